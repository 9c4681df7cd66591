"""CIFAR-10 as in-memory uint8 arrays, and the two ways to augment them.

Sources: torchvision's CIFAR-10 (downloaded into a cache dir, for machines with a network),
or an image-folder tree ``train/<class>/*``, ``test/<class>/*`` given as a directory or a
``.tar.gz``. Decoded arrays are cached as ``.npz`` so JPEGs are decoded once.

Augmentation: ``AlbumentationsDataset`` (per image, the course's pipeline, any transform
albumentations has) or ``BatchLoader`` (whole batches with torch ops: flip, translate,
cutout; 3x the throughput on one core and no worker processes, which matters on 2 cores).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

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


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1]: what Normalize and cutout's fill need."""
    flat = images.reshape(-1, images.shape[-1])
    levels = np.arange(256) / 255.0
    means, stds = [], []
    for c in range(flat.shape[1]):  # a 256-bin histogram per channel: exact, and no float copy of the data
        p = np.bincount(flat[:, c], minlength=256) / len(flat)
        mean = float((p * levels).sum())
        means.append(round(mean, 4))
        stds.append(round(float(np.sqrt((p * (levels - mean) ** 2).sum())), 4))
    return tuple(means), tuple(stds)


def decode_image(data: bytes | str | Path, name: str, size: int = 32) -> np.ndarray:
    """Any image file as (size, size, 3) uint8 RGB; DataError naming the file if unreadable."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot decode image {name}: {exc}") from exc


def _split_and_class(parts: tuple[str, ...]) -> tuple[str, str] | None:
    for i, part in enumerate(parts[:-2]):
        if part in ("train", "test"):
            return part, parts[i + 1]
    return None


def _iter_folder(root: Path) -> Iterator[tuple[str, str, str, bytes]]:
    for path in sorted(root.rglob("*")):
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


def _cache_path(source: Path, cache_dir: Path, size: int, skip_corrupt: bool) -> Path:
    st = source.stat()
    key = f"{CACHE_VERSION}|{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}|{skip_corrupt}"
    return cache_dir / f"{source.name.split('.')[0]}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"


def _save_npz_atomic(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_cifar10(data: str | Path | None, cache_dir: str | Path = "~/.cache/advconv",
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
    _save_npz_atomic(cache, train_x=train.images, train_y=train.labels, test_x=test.images,
                     test_y=test.labels, classes=np.array(train.classes))
    return train, test


# ---------------------------------------------------------------- augmentation

def albumentations_transform(mean: tuple[float, ...], std: tuple[float, ...], train: bool,
                             hflip: float = 0.5, affine: float = 0.5, shift: float = 0.0625,
                             scale: float = 0.1, rotate: float = 15.0, cutout: float = 0.5,
                             cutout_size: int = 16):
    """The course pipeline: flip, shift-scale-rotate (Affine), cutout filled with the mean, normalize."""
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    steps = []
    if train:
        fill = tuple(255.0 * m for m in mean)
        steps += [
            A.HorizontalFlip(p=hflip),
            A.Affine(translate_percent=(-shift, shift), scale=(1 - scale, 1 + scale),
                     rotate=(-rotate, rotate), fill=fill, p=affine),
            A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(cutout_size, cutout_size),
                            hole_width_range=(cutout_size, cutout_size), fill=fill, p=cutout),
        ]
    steps += [A.Normalize(mean=mean, std=std), ToTensorV2()]
    return A.Compose(steps)


class AlbumentationsDataset(Dataset):
    """(image, label) pairs from an ArrayDataset through an albumentations pipeline."""

    def __init__(self, data: ArrayDataset, transform) -> None:
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(image=self.data.images[i])["image"], int(self.data.labels[i])


def seed_albumentations_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own albumentations stream derived from torch's seed."""
    info = torch.utils.data.get_worker_info()
    info.dataset.transform.set_random_seed(info.seed % 2**32)


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float, normalized with per-channel mean/std given in [0, 1]:
    the one place training, evaluation and inference turn pixels into inputs."""
    mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255
    std = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255
    return (images.float() - mean) / std


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """The seed of one epoch's shuffle or augmentation: a function of (seed, epoch) alone, so a
    resumed run draws exactly what an uninterrupted one would."""
    return seed * 100_003 + epoch + 7_919 * stream


class BatchLoader:
    """Shuffled, augmented, normalized batches from uint8 tensors held in memory.

    Randomness comes from ``seed`` and the epoch number alone, so a resumed run sees the
    same batches as an uninterrupted one. ``rank``/``world_size`` shard each epoch's
    permutation for data-parallel training.
    """

    def __init__(self, data: ArrayDataset, mean, std, batch_size: int, train: bool,
                 seed: int = 0, translate: int = 4, hflip: float = 0.5, alternate_flip: bool = False,
                 cutout: float = 0.5, cutout_size: int = 16, channels_last: bool = True,
                 drop_last: bool | None = None,
                 rank: int = 0, world_size: int = 1) -> None:
        self.images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()  # N,C,H,W uint8
        self.labels = torch.from_numpy(data.labels)
        self.mean, self.std = mean, std
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.translate, self.hflip, self.cutout, self.cutout_size = translate, hflip, cutout, cutout_size
        # alternating flip (airbench): each image is mirrored in every other epoch, from a random
        # start, so two consecutive epochs always show both views instead of a coin flip's repeats
        self.alternate_flip = alternate_flip
        self.flip_phase = torch.randint(0, 2, (len(self.labels),), generator=torch.Generator().manual_seed(seed))
        self.channels_last = channels_last
        self.drop_last = train if drop_last is None else drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.labels)
        if not self.train:
            return torch.arange(n)[self.rank::self.world_size]
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return torch.randperm(n, generator=g)[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(range(self.rank, len(self.labels), self.world_size))  # this rank's share
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self._indices()
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, stream=self.rank + 1))
        for b in range(len(self)):
            sel = idx[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.images[sel]
            if self.train:
                if self.alternate_flip:
                    flip = (self.flip_phase[sel] + self.epoch) % 2 == 1
                else:
                    flip = torch.rand(len(sel), generator=g) < self.hflip
                x = self.augment(x, flip, g)
            x = normalize(x, self.mean, self.std)
            if self.train and self.cutout > 0:
                x = x.masked_fill(self._cutout_mask(x, g), 0.0)  # 0 == the dataset mean after normalizing
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[sel]

    def augment(self, x: torch.Tensor, flip: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Mirror the ``flip`` images and translate all (reflect-padded crop) of a uint8 batch."""
        n, _, h, w = x.shape
        if flip.any():
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        t = self.translate
        if t > 0:
            padded = torch.nn.functional.pad(x.float(), (t, t, t, t), mode="reflect").to(torch.uint8)
            dy, dx = (torch.randint(0, 2 * t + 1, (n,), generator=g) for _ in range(2))
            rows = (dy.view(-1, 1) + torch.arange(h)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * t)
            x = padded.gather(2, rows)
            cols = (dx.view(-1, 1) + torch.arange(w)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
            x = x.gather(3, cols)
        return x

    def _cutout_mask(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        apply = torch.rand(n, generator=g) < self.cutout
        cy = torch.randint(0, h, (n,), generator=g).view(-1, 1, 1)
        cx = torch.randint(0, w, (n,), generator=g).view(-1, 1, 1)
        size, half = self.cutout_size, self.cutout_size // 2
        ys, xs = torch.arange(h).view(1, -1, 1), torch.arange(w).view(1, 1, -1)
        inside = lambda pos, c: (pos - c + half >= 0) & (pos - c + half < size)  # noqa: E731
        mask = inside(ys, cy) & inside(xs, cx) & apply.view(-1, 1, 1)
        return mask.unsqueeze(1)
