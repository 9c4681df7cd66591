"""Files on disk: the one way advconv writes one, and the one way it lists a folder's.

A file is written to a temp file beside it, fsynced, then renamed.
Readers never see half a file, a crash or a full disk leaves the previous version in place,
and no temp file is left behind. Every writer in the package (checkpoints, metrics, the
dataset cache, exported models) goes through ``atomic_write``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(f)`` on a binary temp file in ``path``'s folder, then move it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def ensure_writable_dir(folder: str | Path) -> None:
    """Create ``folder`` and prove a file can be made in it; OSError if not."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder):
        pass


def folder_files(root: Path) -> list[Path]:
    """Every file under ``root``, symlinked folders followed (each real folder once, so a link
    cycle ends), in a fixed order."""
    files, seen = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        seen.add(os.path.realpath(folder))
        subfolders[:] = [d for d in subfolders if os.path.realpath(os.path.join(folder, d)) not in seen]
        files += [Path(folder) / name for name in names]
    return sorted(files)
