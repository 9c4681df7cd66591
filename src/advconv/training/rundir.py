"""A run directory: made safe to train into, and its metrics files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..files import atomic_write_bytes, ensure_writable_dir
from ..trained import manifest, runfiles


def write_metrics(run_dir: str | Path, history: list[dict[str, Any]]) -> None:
    """``metrics.json`` and ``metrics.csv``: one row per finished epoch."""
    run_dir = Path(run_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    try:
        atomic_write_bytes(run_dir / runfiles.METRICS_JSON, json.dumps(history, indent=1).encode())
        atomic_write_bytes(run_dir / runfiles.METRICS_CSV, buf.getvalue().encode())
    except OSError as exc:
        raise CheckpointError(f"cannot write metrics in {run_dir}: {exc.strerror or exc}") from exc




def prepare_run_dir(run_dir: str | Path, new_run: bool, overwrite: bool = False) -> None:
    """Before training, not after the first epoch: the run directory must be writable, and a new
    run may not replace a trained one unless ``overwrite``. A new run trains only into an empty
    directory or one of ours (its manifest says so), and deletes there only what it can prove a
    run wrote: training's own files and the outputs its manifest lists."""
    run_dir = Path(run_dir)
    held = sorted(f.name for f in run_dir.iterdir()) if new_run and run_dir.is_dir() else []
    ours = manifest.read(run_dir)
    if held and ours is None:
        raise CheckpointError(f"{run_dir} holds files that no advconv run wrote ({', '.join(held[:3])}"
                              f"{', ...' if len(held) > 3 else ''}); choose another --run_dir or an empty one")
    trained = [name for name in runfiles.TRAINED if name in held]
    if trained and not overwrite:
        raise CheckpointError(
            f"run directory {run_dir} already holds a run ({', '.join(trained)}); "
            f"continue it with `advconv train --resume {run_dir}`, replace it with --overwrite, "
            "or choose another --run_dir")
    written = set(runfiles.TRAINING) | set(manifest.outputs(ours)) | {runfiles.MANIFEST}
    try:
        for name in written & set(held):
            (run_dir / name).unlink()
        ensure_writable_dir(run_dir)
    except OSError as exc:
        raise CheckpointError(f"run directory {run_dir} is not writable: {exc.strerror or exc}") from exc
