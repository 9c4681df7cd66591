"""The cache of decoded arrays: where it lives, what a cached file's name depends on, and
reading or building one (a damaged file is rebuilt, never trusted)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import warn
from ..files import atomic_write, folder_files

CACHE_VERSION = 2  # bump when what a cached file holds changes


def cache_dir_of(given: str | Path | None = None) -> Path:
    """Where decoded datasets are cached on this machine: ``given``, else $ADVCONV_CACHE, else
    ~/.cache/advconv (never a folder stored with a run made elsewhere)."""
    return Path(given or os.environ.get("ADVCONV_CACHE") or "~/.cache/advconv").expanduser()


def fingerprint(source: Path) -> str:
    """What the decoded arrays depend on: a tarball's size and mtime, or for a folder the path,
    size and mtime of every file in it, so an image added, removed or replaced is a new cache."""
    if source.is_file():
        st = source.stat()
        return f"{st.st_size}|{st.st_mtime_ns}"
    digest = hashlib.sha1()
    for path in folder_files(source):
        st = path.stat()
        digest.update(f"{path.relative_to(source)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_path(source: Path, cache_dir: Path, *key_parts) -> Path:
    key = "|".join(map(str, (CACHE_VERSION, source.resolve(), fingerprint(source), *key_parts)))
    return cache_dir / f"{source.name.split('.')[0]}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"


def cached_arrays(cache: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays in ``cache``, or ``build()``'s, written there for next time."""
    if cache.exists():
        try:
            with np.load(cache) as z:
                return {k: z[k] for k in z.files}
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            warn(f"ignoring unreadable cache {cache}: {exc}")
    arrays = build()
    atomic_write(cache, lambda f: np.savez(f, **arrays))
    return arrays
