"""Shared fixtures: a tiny synthetic image-folder dataset, made fresh for each session, and the
tiny training config every training test starts from."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from advconv.config import Config, load_config

REPO = Path(__file__).resolve().parents[1]
SHARED_TARBALL = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
CLASSES = ("circle", "cross", "stripes")


def make_image_folder(root: Path, per_class_train: int = 24, per_class_test: int = 8, seed: int = 0,
                      fmt: str = "png", classes: tuple[str, ...] = CLASSES, size: int = 32) -> Path:
    """Easy classes (a colour + a shape each: a circle, a cross, stripes, then more of each in
    other colours) so a few steps of training can learn them; ``train/`` and ``test/``."""
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        for k, cls in enumerate(classes):
            write_class_images(root / split / cls, k, n, seed + 7 * k + (split == "test"), fmt, size)
    return root


def write_class_images(folder: Path, kind: int, count: int, seed: int = 0, fmt: str = "png", size: int = 32) -> Path:
    """``count`` noisy images of the ``kind``-th easy class into ``folder``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] * 32 // size
    masks = ((yy - 16) ** 2 + (xx - 16) ** 2 < 80, (abs(yy - 16) < 3) | (abs(xx - 16) < 3), (xx // 4) % 2 == 0)
    colours = ((220, 60, 60), (60, 200, 60), (60, 60, 220), (220, 220, 60), (60, 220, 220), (220, 60, 220))
    mask, colour = masks[kind % 3], colours[(kind + kind // 3) % len(colours)]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        img[mask] = np.clip(np.array(colour) + rng.integers(-30, 30, 3), 0, 255)
        Image.fromarray(img).save(folder / f"{i:04d}.{fmt}")
    return folder


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


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, image_folder) -> Path:
    """A run trained for 2 epochs on the tiny dataset, shared by the tests that use a trained net."""
    from advconv.training.train import fit

    tmp = tmp_path_factory.mktemp("trained")
    fit(tiny_config(tmp, image_folder, epochs=2), progress=False)
    return tmp / "run" / "best.pt"


def net_and_record(path: Path):
    from advconv.trained.hub import load_model

    trained = load_model(path)
    return trained.net, trained.record


CHROMIUM = Path("/usr/bin/chromium")  # Debian's: .ci/run installs it; playwright's own download cannot run here


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_chromium(playwright):
    """Headless Chromium as these tests drive it: no sandbox (root in CI), nothing reaching out."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])
