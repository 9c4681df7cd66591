"""A run's files: checkpoints, shareable weights and metrics, written atomically, and the
record inference needs.

A checkpoint (``last.pt``, ``best.pt``) is one dict: the weights to deploy (``model``, or
``ema`` when averaged), the ``InferenceRecord`` (what feeding the net needs), the ``config``,
and the training state that makes a resume bit-exact (optimizer, scheduler, EMA state, RNG
states, epoch, history). It holds tensors and plain values only and is read with
``torch.load(weights_only=True)``: a file that needs anything else is refused, unrun.

The weights to share are ``model.safetensors`` (tensors only, no pickle at all) with
``model.json`` beside it (the record and where the weights came from).
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import ChannelStats
from .files import atomic_write, atomic_write_bytes, ensure_writable_dir
from .models import build_net, resolve_spec


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or written; the message names the file."""


@dataclass
class InferenceRecord:
    """Everything needed to feed a trained net and read its output, beside its weights."""

    spec: dict[str, Any]            # the NetSpec, as a dict
    classes: tuple[str, ...]
    mean: tuple[float, ...]         # per-channel, in [0, 1]
    std: tuple[float, ...]
    input_size: int = 32
    tta: bool = False               # average with the mirrored image
    tta_shift: int = 0              # and with copies shifted by +-N pixels

    @property
    def stats(self) -> ChannelStats:
        return ChannelStats(self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InferenceRecord":
        data = dict(data)
        for key in ("classes", "mean", "std"):
            data[key] = tuple(data[key])
        return cls(**data)

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> "InferenceRecord":
        if "record" in state:
            return cls.from_dict(state["record"])
        # checkpoints written before the record existed kept its fields at the top level
        cfg = state["config"]
        return cls(state["spec"], tuple(state["classes"]), tuple(state["mean"]), tuple(state["std"]),
                   tta=cfg.get("tta", False), tta_shift=cfg.get("tta_shift", 0))


# checkpoints of advconv 0.1 kept numpy's RNG state as an array: let exactly that through
_multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
LEGACY_ARRAYS = [_multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    path = Path(path)
    try:
        atomic_write(path, lambda f: torch.save(state, f))
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint file, or a run directory's ``last.pt``; CheckpointError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(LEGACY_ARRAYS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            raise CheckpointError(
                f"checkpoint {path} was not loaded: it needs {found.group(1)}, which is not a tensor or a plain "
                "value, and loading it could run code it carries (advconv checkpoints never need that)") from None
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupt?)") from None
    except Exception as exc:
        first = str(exc).split(". ")[0].splitlines()[0] if str(exc) else ""  # torch's own words run to a page
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupt?): "
                              f"{type(exc).__name__}: {first}") from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not an advconv checkpoint (no model/config inside)")
    return state


def model_from_checkpoint(state: dict[str, Any]) -> tuple[nn.Module, InferenceRecord]:
    """The trained network (eval mode; the averaged weights when the run kept an EMA) and its record."""
    record = InferenceRecord.from_checkpoint(state)
    model = build_net(resolve_spec(record.spec), record.input_size)
    model.load_state_dict(state.get("ema") or state["model"])
    return model.eval(), record


WEIGHTS = "model.safetensors"  # beside the checkpoints: the deployed weights, the record in model.json


def save_weights(path: str | Path, weights: dict[str, torch.Tensor], record: InferenceRecord,
                 provenance: dict[str, Any]) -> Path:
    """``path`` (.safetensors) and the ``.json`` beside it: what a user shares and loads with no pickle."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    meta = {"record": record.to_dict(), "provenance": provenance}
    atomic_write_bytes(path, save(tensors))
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    return path


def load_weights(path: str | Path) -> tuple[nn.Module, InferenceRecord, dict[str, Any]]:
    """The net (eval mode), its record and provenance from a ``.safetensors`` and its ``.json``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path, meta_path = Path(path), Path(path).with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        record = InferenceRecord.from_dict(meta["record"])
        weights = load_file(path)
    except FileNotFoundError as exc:
        raise CheckpointError(f"weights not found: {exc.filename} (a .safetensors needs its .json beside it)") from None
    except (ValueError, KeyError, TypeError, SafetensorError, OSError) as exc:
        raise CheckpointError(f"weights {path} are unreadable: {type(exc).__name__}: {exc}") from None
    model = build_net(resolve_spec(record.spec), record.input_size)
    model.load_state_dict(weights)
    return model.eval(), record, meta.get("provenance", {})


SHIPPED = Path(__file__).resolve().parent / "weights"  # trained weights that come with the package


def shipped_names() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.safetensors"))


@dataclass
class TrainedModel:
    """A trained net ready to use: eval mode, its inference record, and where it came from
    (the run's config and epoch, or the provenance shipped with the weights)."""

    net: nn.Module
    record: InferenceRecord
    provenance: dict[str, Any]


def load_model(source: str | Path) -> TrainedModel:
    """A shipped name (``assignment9``), a run directory, a ``.safetensors`` (with its ``.json``)
    or a ``.pt`` checkpoint; only the checkpoint is a pickle, read with ``weights_only``."""
    if isinstance(source, str) and source in shipped_names():
        source = SHIPPED / f"{source}.safetensors"
    path = Path(source)
    if path.is_dir():
        path = path / WEIGHTS if (path / WEIGHTS).exists() else path / "last.pt"
    if path.suffix == ".safetensors":
        return TrainedModel(*load_weights(path))
    if path.suffix in (".pt", ".pth") or path.exists():
        state = load_checkpoint(path)
        net, record = model_from_checkpoint(state)
        return TrainedModel(net, record, {"config": state["config"], "epoch": state.get("epoch")})
    raise CheckpointError(f"no model at {source}: give a run directory, a .pt checkpoint, a .safetensors "
                          f"or a shipped name ({', '.join(shipped_names()) or 'none shipped'})")


def write_metrics(run_dir: str | Path, history: list[dict[str, Any]]) -> None:
    """``metrics.json`` and ``metrics.csv``: one row per finished epoch."""
    run_dir = Path(run_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    try:
        atomic_write_bytes(run_dir / "metrics.json", json.dumps(history, indent=1).encode())
        atomic_write_bytes(run_dir / "metrics.csv", buf.getvalue().encode())
    except OSError as exc:
        raise CheckpointError(f"cannot write metrics in {run_dir}: {exc.strerror or exc}") from exc


RUN_FILES = ("*.pt", "metrics.json", "metrics.csv", "manifest.json", "*.png", "*.onnx")  # what a run writes
TRAINED = ("*.pt", "metrics.json", "metrics.csv")  # what only a run that finished an epoch leaves


def prepare_run_dir(run_dir: str | Path, new_run: bool, overwrite: bool = False) -> None:
    """Before training, not after the first epoch: the run directory must be writable, and a new
    run may not replace a trained one unless ``overwrite``. A new run first deletes what an earlier
    run wrote there (checkpoints, metrics, manifest, figures, exports; nothing else)."""
    run_dir = Path(run_dir)
    found = lambda patterns: sorted(f for p in patterns for f in run_dir.glob(p) if f.is_file())  # noqa: E731
    trained = found(TRAINED) if new_run else []
    if trained and not overwrite:
        raise CheckpointError(
            f"run directory {run_dir} already holds a run ({', '.join(f.name for f in trained)}); "
            f"continue it with `advconv train --resume {run_dir}`, replace it with --overwrite, "
            "or choose another --run_dir")
    try:
        for f in found(RUN_FILES) if new_run else []:
            f.unlink()
        ensure_writable_dir(run_dir)
    except OSError as exc:
        raise CheckpointError(f"run directory {run_dir} is not writable: {exc.strerror or exc}") from exc
