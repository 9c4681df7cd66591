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

from .config import Config
from .files import atomic_write_bytes

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


def start_session(run_dir: str | Path, session: dict[str, Any]) -> list[dict[str, Any]]:
    """Add ``session`` to the run's manifest (kept from earlier sessions when resuming) and write it."""
    path = Path(run_dir) / "manifest.json"
    try:
        sessions = json.loads(path.read_text())["sessions"] if path.exists() else []
    except (OSError, ValueError, KeyError, TypeError):
        sessions = []  # unreadable: start it anew rather than stop a run over its notes
    sessions.append(session)
    _write(path, sessions)
    return sessions


def end_session(run_dir: str | Path, sessions: list[dict[str, Any]], wall_s: float) -> None:
    sessions[-1].update(wall_s=round(wall_s, 1), finished=True)
    _write(Path(run_dir) / "manifest.json", sessions)


def _write(path: Path, sessions: list[dict[str, Any]]) -> None:
    atomic_write_bytes(path, json.dumps({"sessions": sessions}, indent=1).encode())
