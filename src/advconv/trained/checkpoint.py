"""A trained net on disk: checkpoints to resume from, and weights to share.

A checkpoint (``last.pt``, ``best.pt``) is a ``Checkpoint``: the weights, the
``InferenceRecord`` (what feeding the net needs), the config, and the training state that
makes a resume bit-exact (optimizer, scheduler, EMA, RNG states, epoch, history). On disk it
is a dict of tensors and plain values, read with ``torch.load(weights_only=True)``: a file
that needs anything else is refused, unrun.

The weights to share are a ``.safetensors`` file (tensors only, no pickle at all) with a
``.json`` beside it (the record and where the weights came from).
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import RENAMED
from ..data.datasets import ChannelStats
from ..errors import CheckpointError
from ..files import atomic_write, atomic_write_bytes
from ..nets.models import build_net
from ..nets.specs import resolve_spec
from . import runfiles


@dataclass
class InferenceRecord:
    """Everything needed to feed a trained net and read its output, beside its weights."""

    spec: dict[str, Any]            # the NetSpec, as a dict
    classes: tuple[str, ...]
    mean: tuple[float, ...]         # per-channel, in [0, 1]
    std: tuple[float, ...]
    input_size: int = 32
    tta_flip: bool = False          # average with the mirrored image
    tta_shift: int = 0              # and with copies shifted by +-N pixels
    temperature: float = 1.0        # the logits are divided by it before the softmax (calibration.py)
    unsure_score: str | None = None         # how sure the net is of an image (calibration.SCORES) ...
    unsure_threshold: float | None = None   # ... and below what an answer is marked unsure (None: never)

    @property
    def stats(self) -> ChannelStats:
        return ChannelStats(self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InferenceRecord":
        data = {RENAMED.get(key, key): value for key, value in data.items()}  # as older weights spell them
        for key in ("classes", "mean", "std"):
            data[key] = tuple(data[key])
        return cls(**data)

    def build(self) -> nn.Module:
        """The net this record describes, untrained."""
        return build_net(resolve_spec(self.spec), self.input_size)


@dataclass
class Checkpoint:
    """A run after a finished epoch: what to deploy, and all a bit-exact resume needs."""

    model: dict[str, torch.Tensor]      # the trained weights
    record: InferenceRecord
    config: dict[str, Any]              # Config.to_dict()
    epoch: int                          # epochs finished
    best_acc: float                     # the best evaluated accuracy so far (%)
    history: list[dict[str, Any]]       # one row per epoch, as in metrics.csv
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]              # the fp16 loss scale
    rng: dict[str, Any]                 # every global RNG's state (runtime.rng_state)
    ema: dict[str, torch.Tensor] | None = None        # the averaged weights, deployed when present
    ema_state: dict[str, Any] | None = None           # the EMA module's own state, to resume it
    data: dict[str, Any] | None = None                # what it trained and was scored on (data.describe_data)

    @property
    def deployed(self) -> dict[str, torch.Tensor]:
        """The weights that were evaluated and are shipped: the EMA's when the run kept one."""
        return self.ema if self.ema is not None else self.model

    def net(self) -> nn.Module:
        """The trained net, in eval mode."""
        net = self.record.build()
        net.load_state_dict(self.deployed)
        return net.eval()

    def to_dict(self) -> dict[str, Any]:
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return state | {"record": self.record.to_dict()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "Checkpoint":
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in state.items() if k in names}
        return cls(**fields | {"record": InferenceRecord.from_dict(state["record"])})


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    path = Path(path)
    try:
        atomic_write(path, lambda f: torch.save(checkpoint.to_dict(), f))
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc


REQUIRED = {f.name for f in dataclasses.fields(Checkpoint) if f.default is dataclasses.MISSING}


def load_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint file, or a run directory's ``last.pt``; CheckpointError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / runfiles.LAST
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
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
    if not isinstance(state, dict) or not REQUIRED <= set(state):
        missing = sorted(REQUIRED - set(state)) if isinstance(state, dict) else ["everything"]
        raise CheckpointError(f"{path} is not an advconv checkpoint (missing: {', '.join(missing)})")
    return Checkpoint.from_dict(state)




HUB_CONFIG = "config.json"  # in a Hub-style folder, the record beside model.safetensors (the Hub's name for it)


def meta_path_of(path: Path) -> Path:
    """Where a ``.safetensors``'s record lives: the ``.json`` of its name, else a Hub folder's config.json."""
    own = path.with_suffix(".json")
    return own if own.exists() or not (path.parent / HUB_CONFIG).exists() else path.parent / HUB_CONFIG


def save_weights(path: str | Path, weights: dict[str, torch.Tensor], record: InferenceRecord,
                 provenance: dict[str, Any], meta_path: str | Path | None = None) -> Path:
    """``path`` (.safetensors) and its record (the ``.json`` beside it, or ``meta_path``): what a
    user shares and loads with no pickle."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    meta = {"library_name": "advconv", "record": record.to_dict(), "provenance": provenance}
    atomic_write_bytes(path, save(tensors))
    atomic_write_bytes(Path(meta_path) if meta_path else path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    return path


def load_weights(path: str | Path) -> tuple[nn.Module, InferenceRecord, dict[str, Any]]:
    """The net (eval mode), its record and provenance from a ``.safetensors`` and its ``.json``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta_path = meta_path_of(path)
    try:
        meta = json.loads(meta_path.read_text())
        record = InferenceRecord.from_dict(meta["record"])
        weights = load_file(path)
    except FileNotFoundError as exc:
        raise CheckpointError(f"weights not found: {exc.filename} (a .safetensors needs its .json beside it)") from None
    except (ValueError, KeyError, TypeError, SafetensorError, OSError) as exc:
        raise CheckpointError(f"weights {path} are unreadable: {type(exc).__name__}: {exc}") from None
    model = record.build()
    model.load_state_dict(weights)
    return model.eval(), record, meta.get("provenance", {})
