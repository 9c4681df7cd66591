"""Shared fixtures: a tiny synthetic image-folder dataset, made fresh for each session, and the
tiny training config every training test starts from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from advconv.config import Config, load_config

REPO = Path(__file__).resolve().parents[1]
SHARED_TARBALL = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
CLASSES = ("circle", "cross", "stripes")


def make_image_folder(root: Path, per_class_train: int = 24, per_class_test: int = 8, seed: int = 0,
                      fmt: str = "png") -> Path:
    """Three easy classes (a colour + a shape each) so a few steps of training can learn them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    shapes = {
        "circle": ((yy - 16) ** 2 + (xx - 16) ** 2 < 80, (220, 60, 60)),
        "cross": ((abs(yy - 16) < 3) | (abs(xx - 16) < 3), (60, 200, 60)),
        "stripes": ((xx // 4) % 2 == 0, (60, 60, 220)),
    }
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        for cls, (mask, colour) in shapes.items():
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
                img[mask] = np.clip(np.array(colour) + rng.integers(-30, 30, 3), 0, 255)
                Image.fromarray(img).save(folder / f"{i:04d}.{fmt}")
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture
def shared_tarball() -> Path:
    if not SHARED_TARBALL.exists():
        pytest.skip(f"real CIFAR-10 tarball not found at {SHARED_TARBALL} (only on machines with ../shared)")
    return SHARED_TARBALL


TINY = {"epochs": 3, "batch_size": 16, "pipeline": "batched", "workers": 0, "lr": 0.05, "warmup": 0.3}


def tiny_config(workdir: Path, data: Path, **overrides) -> Config:
    """A few steps on the tiny dataset, with the cache and the run directory under ``workdir``."""
    where = {"data.path": str(data), "cache_dir": str(workdir / "cache"), "run_dir": str(workdir / "run")}
    return load_config(None, TINY | where | overrides)


@pytest.fixture
def make_config(tmp_path, image_folder):
    """``make_config(**overrides)``: ``tiny_config`` in this test's tmp_path on the tiny dataset."""
    return lambda **overrides: tiny_config(tmp_path, image_folder, **overrides)
