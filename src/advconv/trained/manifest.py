"""``manifest.json`` beside a run's checkpoints: what ran, on what, so a quoted figure names its machine.

It lists one session per ``advconv train`` process that worked on the run: the first, and one
more for each resume (which may come on another machine or from another commit).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..config import Config
from ..files import atomic_write_bytes
from . import runfiles

PACKAGES = ("advconv", "torch", "torchvision", "numpy", "albumentations", "pillow")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(folder: Path = Path(__file__).resolve().parent) -> str | None:
    """The commit of the advconv checkout this code runs from (None when installed from a wheel),
    marked ``-dirty`` when the checkout has uncommitted changes."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        return git("rev-parse", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str | None]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe_session(cfg: Config, device: torch.device, world_size: int) -> dict[str, Any]:
    """What this process runs, and where: one session of the manifest."""
    return {
        "command": sys.argv,
        "config": cfg.to_dict(),
        "git_commit": git_commit(),
        "versions": versions() | {"python": platform.python_version()},
        "machine": {
            "cpu": cpu_model(), "cpus": torch.multiprocessing.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "device": str(device), "world_size": world_size, "platform": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_s": None,          # filled in when the run ends
        "finished": False,
    }




def read(run_dir: str | Path) -> dict[str, Any] | None:
    """The run directory's manifest, or None where there is none of ours (absent, unreadable, or
    a file of the same name that is not an advconv manifest)."""
    try:
        found = json.loads((Path(run_dir) / runfiles.MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    ours = isinstance(found, dict) and isinstance(found.get("sessions"), list) and \
        all(isinstance(s, dict) and "config" in s for s in found["sessions"])
    return found if ours else None


def outputs(record: dict[str, Any] | None) -> list[str]:
    """What advconv's other commands (plot, explain, export) wrote into a run directory, as its
    manifest (``read``; None: no manifest) lists them."""
    return list((record or {}).get("outputs", []))


def record_outputs(paths: list[Path]) -> None:
    """Add the files an advconv command wrote to the manifest of the run directory each lies in,
    so that a new run there may delete them, and nothing else."""
    for path in paths:
        found = read(path.parent)
        if found is not None and path.name not in found.setdefault("outputs", []):
            found["outputs"].append(path.name)
            atomic_write_bytes(path.parent / runfiles.MANIFEST, json.dumps(found, indent=1).encode())


def start_session(run_dir: str | Path, session: dict[str, Any]) -> list[dict[str, Any]]:
    """Add ``session`` to the run's manifest (kept from earlier sessions when resuming) and write it."""
    sessions = (read(run_dir) or {}).get("sessions", [])
    sessions.append(session)
    _write(Path(run_dir), sessions)
    return sessions


def end_session(run_dir: str | Path, sessions: list[dict[str, Any]], wall_s: float) -> None:
    sessions[-1].update(wall_s=round(wall_s, 1), finished=True)
    _write(Path(run_dir), sessions)


def _write(run_dir: Path, sessions: list[dict[str, Any]]) -> None:
    listed = outputs(read(run_dir))
    kept = {"outputs": listed} if listed else {}
    atomic_write_bytes(run_dir / runfiles.MANIFEST, json.dumps({"sessions": sessions} | kept, indent=1).encode())
