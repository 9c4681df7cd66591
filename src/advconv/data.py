"""Datasets as in-memory uint8 arrays: where the images come from, decoded once.

Sources: torchvision's CIFAR-10 (downloaded into a cache dir, for machines with a network),
or an image-folder tree ``train/<class>/*``, ``test/<class>/*`` given as a directory or a
``.tar.gz``. Decoded arrays are cached as ``.npz`` so JPEGs are decoded once. Turning them
into augmented batches is ``loaders.py``'s job.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from .config import DataConfig
from .files import atomic_write

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff")
CACHE_VERSION = 1


class DataError(RuntimeError):
    """The dataset cannot be found, read or decoded; the message says what to do."""


@dataclass
class ArrayDataset:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and std of the training images, in [0, 1]: what normalizing the
    inputs and filling cutout holes with the mean need."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def channel_stats(images: np.ndarray) -> ChannelStats:
    """``ChannelStats`` of (N, H, W, C) uint8 images."""
    flat = images.reshape(-1, images.shape[-1])
    levels = np.arange(256) / 255.0
    means, stds = [], []
    for c in range(flat.shape[1]):  # a 256-bin histogram per channel: exact, and no float copy of the data
        p = np.bincount(flat[:, c], minlength=256) / len(flat)
        mean = float((p * levels).sum())
        means.append(round(mean, 4))
        stds.append(round(float(np.sqrt((p * (levels - mean) ** 2).sum())), 4))
    return ChannelStats(tuple(means), tuple(stds))


def image_array(img: Image.Image, size: int = 32) -> np.ndarray:
    """A PIL image as (size, size, 3) uint8 RGB, stretched to the square: how every image,
    training or deployed, reaches the net."""
    img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def decode_image(data: bytes | str | Path, name: str, size: int = 32) -> np.ndarray:
    """Any image file as (size, size, 3) uint8 RGB; DataError naming the file if unreadable."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            return image_array(img, size)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot decode image {name}: {exc}") from exc


def _split_and_class(parts: tuple[str, ...]) -> tuple[str, str] | None:
    for i, part in enumerate(parts[:-2]):
        if part in ("train", "test"):
            return part, parts[i + 1]
    return None


def _folder_files(root: Path) -> list[Path]:
    """Every file under ``root``, symlinked folders followed, in a fixed order."""
    return sorted(Path(folder) / name for folder, _, names in os.walk(root, followlinks=True) for name in names)


def _iter_folder(root: Path) -> Iterator[tuple[str, str, str, bytes]]:
    for path in _folder_files(root):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found = _split_and_class(path.relative_to(root).parts)
            if found:
                yield found[0], found[1], str(path), path.read_bytes()


def _iter_tarball(path: Path) -> Iterator[tuple[str, str, str, bytes]]:
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                    found = _split_and_class(Path(member.name).parts)
                    if found:
                        yield found[0], found[1], f"{path}:{member.name}", tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot read archive {path}: {exc}") from exc


def load_image_folder(source: str | Path, skip_corrupt: bool = False,
                      size: int = 32) -> tuple[ArrayDataset, ArrayDataset]:
    """Decode ``train/<class>/*`` and ``test/<class>/*`` from a directory or a tarball."""
    source = Path(source)
    files = _iter_tarball(source) if source.is_file() else _iter_folder(source)
    found: dict[str, list[tuple[str, np.ndarray]]] = {"train": [], "test": []}
    for split, cls, name, data in files:
        try:
            found[split].append((cls, decode_image(data, name, size)))
        except DataError as exc:
            if not skip_corrupt:
                raise DataError(f"{exc}\n(pass --skip-corrupt to skip unreadable images with a warning)") from None
            warnings.warn(f"skipping {exc}", stacklevel=2)
    for split in ("train", "test"):
        if not found[split]:
            raise DataError(f"no images under {source} in a '{split}/<class>/' folder; expected "
                            "train/<class>/*.jpg and test/<class>/*.jpg")
    classes = tuple(sorted({cls for items in found.values() for cls, _ in items}))
    index = {cls: i for i, cls in enumerate(classes)}

    def to_arrays(items):
        return ArrayDataset(np.stack([img for _, img in items]),
                            np.array([index[cls] for cls, _ in items], dtype=np.int64), classes)

    return to_arrays(found["train"]), to_arrays(found["test"])


def load_torchvision_cifar10(root: str | Path) -> tuple[ArrayDataset, ArrayDataset]:
    """The original CIFAR-10 binaries via torchvision (downloads once into ``root``)."""
    from torchvision.datasets import CIFAR10

    try:
        train, test = (CIFAR10(str(root), train=t, download=True) for t in (True, False))
    except Exception as exc:  # urllib/ssl/checksum errors all mean "not available here"
        raise DataError(
            f"CIFAR-10 could not be downloaded into {root} ({type(exc).__name__}: {exc}).\n"
            "Pass --data PATH with an image-folder tree or .tar.gz holding train/<class>/* and "
            "test/<class>/*, e.g. --data ../shared/data/cifar10-jpeg.tar.gz"
        ) from exc
    return tuple(ArrayDataset(np.asarray(d.data, dtype=np.uint8), np.asarray(d.targets, dtype=np.int64),
                              tuple(d.classes)) for d in (train, test))


def _fingerprint(source: Path) -> str:
    """What the decoded arrays depend on: a tarball's size and mtime, or for a folder the path,
    size and mtime of every file in it, so an image added, removed or replaced is a new cache."""
    if source.is_file():
        st = source.stat()
        return f"{st.st_size}|{st.st_mtime_ns}"
    digest = hashlib.sha1()
    for path in _folder_files(source):
        st = path.stat()
        digest.update(f"{path.relative_to(source)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_path(source: Path, cache_dir: Path, size: int, skip_corrupt: bool) -> Path:
    key = f"{CACHE_VERSION}|{source.resolve()}|{_fingerprint(source)}|{size}|{skip_corrupt}"
    return cache_dir / f"{source.name.split('.')[0]}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"


def load_cifar10(data: str | Path | None, cache_dir: str | Path = DataConfig.cache_dir,
                 skip_corrupt: bool = False) -> tuple[ArrayDataset, ArrayDataset]:
    """Train and test sets from ``data`` (folder or tarball), or torchvision's download if None."""
    cache_dir = Path(cache_dir).expanduser()
    if data is None:
        return load_torchvision_cifar10(cache_dir / "cifar10")
    source = Path(data).expanduser()
    if not source.exists():
        raise DataError(f"dataset not found: {source}\nPass --data PATH with an image-folder tree or .tar.gz "
                        "(train/<class>/*, test/<class>/*), e.g. --data ../shared/data/cifar10-jpeg.tar.gz, "
                        "or leave --data out to download CIFAR-10 with torchvision.")
    cache = _cache_path(source, cache_dir, 32, skip_corrupt)
    if cache.exists():
        try:
            with np.load(cache) as z:
                classes = tuple(z["classes"].tolist())
                return (ArrayDataset(z["train_x"], z["train_y"], classes),
                        ArrayDataset(z["test_x"], z["test_y"], classes))
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            warnings.warn(f"ignoring unreadable cache {cache}: {exc}", stacklevel=2)
    train, test = load_image_folder(source, skip_corrupt)
    arrays = dict(train_x=train.images, train_y=train.labels, test_x=test.images, test_y=test.labels,
                  classes=np.array(train.classes))
    atomic_write(cache, lambda f: np.savez(f, **arrays))
    return train, test


def hold_out(data: ArrayDataset, count: int, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
    """(the rest, ``count`` images drawn at random): a validation split held out of training.
    The draw depends on ``seed`` alone, so every recipe compared on it sees the same split."""
    if not 0 < count < len(data):
        raise DataError(f"data.val_split must be between 1 and {len(data) - 1} for {len(data)} "
                        f"training images, got {count}")
    order = np.random.default_rng(seed).permutation(len(data))
    rest, held = np.sort(order[count:]), np.sort(order[:count])
    return (ArrayDataset(data.images[rest], data.labels[rest], data.classes),
            ArrayDataset(data.images[held], data.labels[held], data.classes))
