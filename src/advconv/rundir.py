"""A run directory: made safe to train into, and its metrics files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .errors import CheckpointError
from .files import atomic_write_bytes, ensure_writable_dir

WEIGHTS = "model.safetensors"  # beside the checkpoints: the deployed weights, the record in model.json


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
