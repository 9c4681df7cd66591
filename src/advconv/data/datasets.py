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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..config import DataConfig
from ..errors import DataError, warn
from ..files import folder_files
from .cache import cache_dir_of, cache_path, cached_arrays

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff")


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


def image_array(img: Image.Image, size: int | None = 32) -> np.ndarray:
    """A PIL image as (size, size, 3) uint8 RGB, stretched to the square: how every image,
    training or deployed, reaches the net (``size`` None: at its own size). 16-bit and float
    images are scaled to 8 bits."""
    if img.mode.startswith("I") or img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else (1.0 if img.mode == "F" and values.max(initial=0) <= 1 else 255.0)
        img = Image.fromarray(np.clip(values / top * 255, 0, 255).round().astype(np.uint8))
    img = img.convert("RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


MAX_PIXELS = 40_000_000  # an image larger than this is refused before it is decoded: a 48-megapixel phone photo
#                          still passes; a decompression bomb (a small file of billions of pixels) does not


def decode_image(data: bytes | str | Path, name: str, size: int | None = 32, fit: int | None = None) -> np.ndarray:
    """Any image file as (size, size, 3) uint8 RGB (``size`` None: at its own size, or with
    ``fit`` shrunk to fit a ``fit`` x ``fit`` square, keeping its shape); DataError naming the
    file if unreadable or over ``MAX_PIXELS``. A JPEG is decoded reduced where the result is
    smaller anyway, which saves most of its memory."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # ours below says it in one line
            img = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
        with img:
            if img.width * img.height > MAX_PIXELS:
                raise DataError(f"{name} is {img.width}x{img.height} pixels; advconv reads images of at most "
                                f"{MAX_PIXELS / 1e6:g} megapixels")
            if size is not None:
                img.draft("RGB", (size, size))  # JPEG only: decode at 1/2, 1/4 or 1/8 of each side
            elif fit is not None:
                img.thumbnail((fit, fit))  # a JPEG decoded reduced on the way
            return image_array(img, size)
    except DataError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DataError(f"{name} has more pixels than advconv reads ({MAX_PIXELS / 1e6:g} megapixels at most)") \
            from None
    except Exception as exc:  # PIL raises many kinds on damaged files; each means "cannot decode"
        reason = "not an image format PIL can read" if isinstance(exc, UnidentifiedImageError) else \
            " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"cannot decode image {name}: {reason}") from exc


# ---------------------------------------------------------------- layouts: what is where, before decoding

@dataclass
class ImageFile:
    """One image of a dataset, not yet read; ``read`` None marks a class folder of train/ that
    holds no image file at all (so that it is an error, not a class silently dropped)."""

    split: str | None        # "train", "test", or None in a bare <class>/ layout
    cls: str
    name: str                # for messages: the path, or archive:member
    read: Callable[[], bytes] | None  # None: an empty class folder


def _split_and_class(parts: tuple[str, ...]) -> tuple[str | None, str] | None:
    """(split, class) of a file from its path parts: ``.../train|test/<class>/file``, else
    ``.../<class>/file`` (a bare labelled folder); None for a file at the top."""
    for i, part in enumerate(parts[:-2]):
        if part in ("train", "test"):
            return part, parts[i + 1]
    return (None, parts[-2]) if len(parts) >= 2 else None


def scan(source: str | Path) -> list[ImageFile]:
    """The image files of a folder or an archive, with their split and class, read lazily:
    names first, so that classes are known (and checked) before anything is decoded."""
    source = Path(source)
    if source.is_dir():
        paths = [p for p in folder_files(source) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        found = [(_split_and_class(p.relative_to(source).parts), str(p), p.read_bytes) for p in paths]
        folders = {("train", name) for folder, names, _ in os.walk(source) if Path(folder).name == "train"
                   for name in names}
    elif source.is_file():
        found, folders = _scan_tarball(source)
    else:
        raise DataError(f"{source} is neither a folder nor an archive")
    files = [ImageFile(at[0], at[1], name, read) for at, name, read in found if at]
    empty = folders - {(f.split, f.cls) for f in files}  # (split, class) of the class folders of train/
    return files + [ImageFile(split, cls, cls, None) for split, cls in sorted(empty)]


ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error)


class _Tarball:
    """Members of one archive, read in order through a single open file (a .tar.gz cannot
    seek backwards cheaply)."""

    def __init__(self, path: Path) -> None:
        self.path, self.tar = path, None
        try:
            with tarfile.open(path, "r:*") as tar:
                members = tar.getmembers()
                self.members = [m for m in members if m.isfile() and Path(m.name).suffix.lower() in IMAGE_SUFFIXES]
                self.folders = {("train", Path(m.name).name) for m in members
                                if m.isdir() and Path(m.name).parent.name == "train"}
        except ARCHIVE_ERRORS as exc:
            raise DataError(f"cannot read archive {path}: {_archive_reason(exc)}") from None

    def reader(self, member: tarfile.TarInfo) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                self.tar = self.tar or tarfile.open(self.path, "r:*")
                return self.tar.extractfile(member).read()
            except ARCHIVE_ERRORS as exc:
                raise DataError(f"cannot read archive {self.path}: {_archive_reason(exc)}") from None
        return read


def _archive_reason(exc: BaseException) -> str:
    if isinstance(exc, tarfile.ReadError) and "could not be opened" in str(exc):
        return "not a tar archive (plain, .gz, .bz2 or .xz) that Python's tarfile can read"
    return " ".join(str(exc).split()) or type(exc).__name__  # one line


def _scan_tarball(path: Path) -> tuple[list, set[tuple[str, str]]]:
    tarball = _Tarball(path)
    return ([(_split_and_class(Path(m.name).parts), f"{path}:{m.name}", tarball.reader(m)) for m in tarball.members],
            tarball.folders)


def split_classes(files: list[ImageFile], source: str | Path) -> tuple[str, ...]:
    """The classes of a train/ + test/ dataset, from its folder names: a test class that training
    lacks, a class folder of train/ with no image file, or two names that differ only in case,
    are errors; a class only in train/ is a warning."""
    empty = sorted(f.cls for f in files if f.read is None)
    if empty:
        raise DataError(f"class folder(s) {', '.join(empty)} of {source} train/ hold no image file; add images "
                        "or remove the folder")
    found = {split: sorted({f.cls for f in files if f.split == split}) for split in ("train", "test")}
    if not files:
        raise DataError(f"{source} holds no images (expected train/<class>/*.jpg and test/<class>/*.jpg)")
    for split in ("train", "test"):
        if not found[split]:
            raise DataError(f"no images under {source} in a '{split}/<class>/' folder; expected "
                            "train/<class>/*.jpg and test/<class>/*.jpg")
    classes = tuple(found["train"])
    by_case: dict[str, list[str]] = {}
    for cls in set(found["train"]) | set(found["test"]):
        by_case.setdefault(cls.lower(), []).append(cls)
    clash = [sorted(names) for names in by_case.values() if len(names) > 1]
    if clash:
        raise DataError(f"class names in {source} differ only in case: {', '.join(' and '.join(c) for c in clash)}; "
                        "rename one so each class has one folder name")
    unknown = sorted(set(found["test"]) - set(classes))
    if unknown:
        raise DataError(f"test/ of {source} holds class(es) that train/ lacks: {', '.join(unknown)}; the net cannot "
                        "predict a class it never saw")
    untested = sorted(set(classes) - set(found["test"]))
    if untested:
        warn(f"class(es) {', '.join(untested)} in train/ of {source} have no test images")
    return classes


def dataset_classes(data: str | Path | None, cache_dir: str | Path | None = None, skip_corrupt: bool = False,
                    size: int = DataConfig.image_size) -> tuple[str, ...]:
    """The class names of a training dataset without decoding it: from its decoded cache when
    there is one (listing a large archive takes seconds), else from its folder names."""
    if data is None:
        return CIFAR10_CLASSES
    source = _existing(data)
    cache = _dataset_cache(source, cache_dir, size, skip_corrupt)
    if cache.exists():
        try:
            with np.load(cache) as z:
                return tuple(z["classes"].tolist())
        except Exception:  # a damaged cache is rebuilt by load_dataset; list the names meanwhile
            pass
    return split_classes(scan(source), data)


def _read(f: ImageFile) -> bytes:
    try:
        return f.read()
    except OSError as exc:
        raise DataError(f"cannot read image {f.name}: {exc.strerror or exc}") from None


def _decode(files: list[ImageFile], classes: tuple[str, ...], size: int, skip_corrupt: bool, what: str,
            progress: bool) -> ArrayDataset:
    """Decode ``files`` (labelled by position in ``classes``), with a progress bar; a class left
    with no readable image is an error."""
    index = {cls: i for i, cls in enumerate(classes)}
    images, labels = [], []
    for f in tqdm(files, desc=f"decoding {what}", unit="img", disable=not progress, leave=False):
        try:
            images.append(decode_image(_read(f), f.name, size))
            labels.append(index[f.cls])
        except DataError as exc:
            if not skip_corrupt:
                raise DataError(f"{exc} (pass --skip_corrupt to skip unreadable images with a warning)") from None
            warn(f"skipping {exc}")
    empty = sorted(set(f.cls for f in files) - {classes[i] for i in labels})
    if empty:
        raise DataError(f"class folder(s) {', '.join(empty)} of {what} hold no readable image")
    return ArrayDataset(np.stack(images), np.array(labels, dtype=np.int64), classes)


def load_image_folder(source: str | Path, skip_corrupt: bool = False, size: int = 32,
                      progress: bool = False) -> tuple[ArrayDataset, ArrayDataset]:
    """Decode ``train/<class>/*`` and ``test/<class>/*`` from a directory or a tarball."""
    files = scan(source)
    classes = split_classes(files, source)
    return tuple(_decode([f for f in files if f.split == split], classes, size, skip_corrupt,
                         f"{Path(source).name} {split}/", progress) for split in ("train", "test"))


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_torchvision_cifar10(root: str | Path, size: int = 32) -> tuple[ArrayDataset, ArrayDataset]:
    """The original CIFAR-10 binaries via torchvision (downloads once into ``root``)."""
    from torchvision.datasets import CIFAR10

    try:
        train, test = (CIFAR10(str(root), train=t, download=True) for t in (True, False))
    except Exception as exc:  # urllib/ssl/checksum errors all mean "not available here"
        raise DataError(
            f"CIFAR-10 could not be downloaded into {root} ({type(exc).__name__}: {exc}); "
            "pass --data PATH with an image-folder tree or .tar.gz holding train/<class>/* and "
            "test/<class>/*, e.g. --data ../shared/data/cifar10-jpeg.tar.gz"
        ) from exc
    resize = (lambda x: x) if size == 32 else (
        lambda x: np.stack([image_array(Image.fromarray(img), size) for img in x]))
    return tuple(ArrayDataset(resize(np.asarray(d.data, dtype=np.uint8)), np.asarray(d.targets, dtype=np.int64),
                              tuple(d.classes)) for d in (train, test))


def _dataset_cache(source: Path, cache_dir: str | Path | None, size: int, skip_corrupt: bool) -> Path:
    """Where ``load_dataset`` keeps the decoded train and test arrays of ``source``."""
    return cache_path(source, cache_dir_of(cache_dir), size, skip_corrupt)


def _existing(data: str | Path) -> Path:
    source = Path(data).expanduser()
    if not source.exists():
        raise DataError(f"dataset not found: {source}; pass --data PATH with an image-folder tree or .tar.gz "
                        "(train/<class>/*, test/<class>/*), e.g. --data ../shared/data/cifar10-jpeg.tar.gz, "
                        "or leave --data out to download CIFAR-10 with torchvision.")
    return source


def load_dataset(data: str | Path | None, cache_dir: str | Path | None = None, skip_corrupt: bool = False,
                 size: int = DataConfig.image_size, progress: bool = False) -> tuple[ArrayDataset, ArrayDataset]:
    """Train and test sets from ``data`` (folder or tarball), or torchvision's CIFAR-10 if None,
    every image resized to ``size`` x ``size``; decoded once, then read from the cache."""
    cache_dir = cache_dir_of(cache_dir)
    if data is None:
        return load_torchvision_cifar10(cache_dir / "cifar10", size)
    source = _existing(data)

    def build() -> dict[str, np.ndarray]:
        train, test = load_image_folder(source, skip_corrupt, size, progress)
        return dict(train_x=train.images, train_y=train.labels, test_x=test.images, test_y=test.labels,
                    classes=np.array(train.classes))

    z = cached_arrays(_dataset_cache(source, cache_dir, size, skip_corrupt), build)
    classes = tuple(z["classes"].tolist())
    return ArrayDataset(z["train_x"], z["train_y"], classes), ArrayDataset(z["test_x"], z["test_y"], classes)


def load_labelled(data: str | Path, classes: tuple[str, ...], cache_dir: str | Path | None = None,
                  size: int = DataConfig.image_size, progress: bool = False) -> ArrayDataset:
    """Labelled images to evaluate a model on: the ``test/<class>/*`` of a dataset (its train/ is
    neither needed nor decoded), or a bare ``<class>/*`` folder; labels follow ``classes`` (the
    model's), and a class the model does not know is an error."""
    source = _existing(data)
    files = scan(source)
    tested = [f for f in files if f.split == "test"]
    files = tested if tested else [f for f in files if f.split is None]
    if not files:
        raise DataError(f"no labelled images in {source}: expected test/<class>/*.jpg or <class>/*.jpg")
    unknown = sorted({f.cls for f in files} - set(classes))
    if unknown:
        raise DataError(f"class(es) {', '.join(unknown)} in {source} are not among the model's classes "
                        f"({', '.join(classes)})")
    z = cached_arrays(cache_path(source, cache_dir_of(cache_dir), size, "labelled", classes),
                lambda: dict(zip(("x", "y"), _arrays(_decode(files, classes, size, False, source.name, progress)))))
    return ArrayDataset(z["x"], z["y"], classes)


def _arrays(data: ArrayDataset) -> tuple[np.ndarray, np.ndarray]:
    return data.images, data.labels


def image_files(paths: list[str | Path]) -> list[Path]:
    """The image files named, with every folder among them expanded to the images it holds."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            images = [p for p in folder_files(path) if p.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                raise DataError(f"{path} holds no image file ({', '.join(IMAGE_SUFFIXES)})")
            found += images
        else:
            found.append(path)
    return found


TORCHVISION = "torchvision's CIFAR-10"  # the data a run without data.path trains on


def describe_data(path: str | Path | None, train: ArrayDataset, test: ArrayDataset) -> dict:
    """What a run trained and was scored on, as its weights record it: a name (no path), the
    images per split, and a digest of the test split that names the same images anywhere."""
    return {"name": Path(path).name if path is not None else TORCHVISION,
            "images": {"train": len(train), "test": len(test)}, "test_digest": split_digest(test)}


def split_digest(test: ArrayDataset) -> str:
    """sha256 of the decoded test images and their class names, in order: independent of the
    class order a model uses, and of where the files lie."""
    digest = hashlib.sha256(np.ascontiguousarray(test.images).tobytes())
    digest.update("\n".join(test.classes[i] for i in test.labels).encode())
    return f"sha256:{digest.hexdigest()}"


# What a trained model is scored on: the test set, or the images its run held out of training
# (``data.val_split``); each with the name its result lines carry.
SPLIT_NAMES = {"test": "Test", "val": "Validation"}


def hold_out(data: ArrayDataset, split: int | float, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
    """(the rest, ``split`` images drawn at random, or that fraction of them): a validation split
    held out of training. The draw depends on ``seed`` alone, so every recipe compared on it sees
    the same split."""
    count = round(split * len(data)) if isinstance(split, float) else split
    if not 0 < count < len(data):
        raise DataError(f"data.val_split must leave between 1 and {len(data) - 1} of the {len(data)} "
                        f"training images out, got {split}")
    order = np.random.default_rng(seed).permutation(len(data))
    rest, held = np.sort(order[count:]), np.sort(order[:count])
    return (ArrayDataset(data.images[rest], data.labels[rest], data.classes),
            ArrayDataset(data.images[held], data.labels[held], data.classes))
