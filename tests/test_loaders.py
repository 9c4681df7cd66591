"""The two augmentation pipelines: BatchLoader's torch ops and the albumentations Dataset."""

import numpy as np
import pytest
import torch

from advconv.config import SETTINGS, AlbumentationsConfig, AugmentConfig, BatchedConfig, load_config
from advconv.data.datasets import ArrayDataset, ChannelStats
from advconv.data.loaders import AlbumentationsDataset, BatchLoader, albumentations_transform, make_loaders

STATS = ChannelStats((0.5,) * 3, (0.25,) * 3)


def test_batch_loader_is_a_pure_function_of_seed_and_epoch():
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 10, tuple("abcdefghij"))
    make = lambda: BatchLoader(data, STATS, 16, train=True, seed=3)  # noqa: E731
    a, b = make(), make()
    a.set_epoch(2), b.set_epoch(2)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert len(a) == 2  # drop_last for training
    b.set_epoch(3)
    assert not torch.equal(next(iter(a))[0], next(iter(b))[0])


def test_batch_loader_without_augmentation_only_normalizes():
    images = np.full((4, 32, 32, 3), 128, dtype=np.uint8)
    data = ArrayDataset(images, np.zeros(4, dtype=np.int64), ("a",))
    still = dict(aug=AugmentConfig(hflip=0, cutout=0), batched=BatchedConfig(translate=0))
    loader = BatchLoader(data, STATS, 4, train=True, **still)
    x, _ = next(iter(loader))
    assert torch.allclose(x, torch.full_like(x, (128 / 255 - 0.5) / 0.25), atol=1e-5)


def test_batch_loader_cutout_is_a_16x16_mean_filled_square():
    data = ArrayDataset(np.full((8, 32, 32, 3), 200, dtype=np.uint8), np.zeros(8, dtype=np.int64), ("a",))
    holes = dict(aug=AugmentConfig(hflip=0, cutout=1.0), batched=BatchedConfig(translate=0))
    loader = BatchLoader(data, STATS, 8, train=True, **holes)
    x, _ = next(iter(loader))
    holes = (x == 0).all(1)  # filled with the mean == 0 after normalizing
    assert holes.any(dim=(1, 2)).all()
    assert (holes.sum(dim=(1, 2)) <= 256).all()
    assert (holes.sum(dim=(1, 2)).max() == 256)  # some hole lies fully inside the image


@pytest.mark.parametrize("pipeline", SETTINGS["data.pipeline"].choices)
def test_alternating_flip_mirrors_each_image_every_other_epoch(pipeline):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (32, 32, 32, 3), dtype=np.uint8)
    data = ArrayDataset(images, np.arange(32), tuple(str(i) for i in range(32)))
    still = {"batched": {"translate": 0}, "albumentations": {"affine": 0.0}}[pipeline]
    cfg = load_config(None, {"pipeline": pipeline, "alternate_flip": True, "cutout": 0.0, "batch_size": 32} | still)
    train_for = make_loaders(cfg, data, data, STATS)[0]
    views = []
    for epoch in (0, 1, 2):
        x, y = next(iter(train_for(epoch)))
        views.append(x[y.argsort()])
    flipped_0 = (views[0] != views[1]).flatten(1).any(1)
    assert torch.equal(views[0], views[2])  # same view every two epochs
    assert flipped_0.all()  # and the other view in between
    expected = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    plain = ((views[0] - expected).abs() < 1e-4).flatten(1).all(1)
    assert 5 < int(plain.sum()) < 27  # a random half starts unmirrored
    torch.testing.assert_close(views[1][plain], expected[plain].flip(3))  # mirrored, nothing else


def test_albumentations_batches_match_the_test_loader_without_augmentation():
    from advconv.data.loaders import Normalized

    images = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    data = ArrayDataset(images, np.arange(4), tuple("abcd"))
    transform = albumentations_transform(STATS, AugmentConfig(), AlbumentationsConfig(), train=False)
    dataset = AlbumentationsDataset(data, transform)
    image, label = dataset[2]
    assert label == 2 and image.dtype == torch.uint8 and image.shape == (3, 32, 32)  # normalized per batch
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    (album, labels), = Normalized(loader, STATS, channels_last=True)
    x, _ = next(iter(BatchLoader(data, STATS, 4, train=False, channels_last=True)))
    assert labels.tolist() == [0, 1, 2, 3] and album.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(album, x)


def test_loader_workers_follow_the_cpu_count():
    from advconv.data.loaders import loader_workers

    assert loader_workers(3, cpus=2) == 3  # as configured
    assert loader_workers(None, cpus=2) == 0 and loader_workers(None, cpus=1) == 0
    assert loader_workers(None, cpus=4) == 3 and loader_workers(None, cpus=64) == 4


def test_each_rank_draws_its_own_albumentations_augmentation():
    from advconv.config import load_config
    from advconv.data.loaders import make_loaders

    image = np.random.default_rng(0).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    same = ArrayDataset(image.repeat(64, 0), np.zeros(64, dtype=np.int64), ("a",))  # one image, 64 times
    cfg = load_config(None, {"pipeline": "albumentations", "workers": 0, "batch_size": 32})
    batches = [next(iter(make_loaders(cfg, same, same, STATS, rank, 2)[0](0)))[0] for rank in (0, 1)]
    assert not torch.equal(batches[0], batches[1])  # the k-th sample of each rank is augmented differently
    again = next(iter(make_loaders(cfg, same, same, STATS, 1, 2)[0](0)))[0]
    assert torch.equal(again, batches[1])  # and reproducibly


def test_downsample_blurs_the_chosen_share_of_a_batch_and_leaves_the_rest():
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.integers(0, 255, (64, 32, 32, 3), dtype=np.uint8), np.arange(64) % 10, tuple("abcdefghij"))
    still = AugmentConfig(hflip=0, cutout=0)
    plain, blurred = BatchedConfig(translate=0), BatchedConfig(translate=0, downsample=0.5, downsample_min=8)
    x0, y0 = next(iter(BatchLoader(data, STATS, 64, train=True, aug=still, batched=plain)))
    x1, y1 = next(iter(BatchLoader(data, STATS, 64, train=True, aug=still, batched=blurred)))
    assert torch.equal(y0, y1)
    changed = (x0 != x1).flatten(1).any(1)
    assert 16 < int(changed.sum()) < 48  # about half the batch
    smoothness = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert smoothness(x1[changed]) < 0.8 * smoothness(x0[changed])  # random noise images get smoother
    torch.testing.assert_close(x1[changed].mean(), x0[changed].mean(), atol=0.05, rtol=0)  # colour kept


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("mix", [{}, {"mixup": 1.0}, {"cutmix": 1.0}, {"mixup": 0.4, "cutmix": 1.0}])
def test_mixing_mixes_the_targets_in_the_proportions_of_the_images(mix, soft):
    """Class k's images have the constant value 30 k; a batch's mean values must follow its targets,
    hard labels or (``soft``, as distillation gives) a row of probabilities per image."""
    classes = tuple("abcdefgh")
    values = np.arange(8, dtype=np.uint8) * 30
    images = np.repeat(values, 32 * 32 * 3).reshape(8, 32, 32, 3)
    labels = np.tile(np.arange(8), 4)
    data = ArrayDataset(np.concatenate([images] * 4), labels, classes)
    rows = torch.eye(8)
    if soft:  # class k's target: 3/4 on k, 1/4 on k + 1
        rows = 0.75 * rows + 0.25 * rows.roll(1, 1)
    still = AugmentConfig(hflip=0, cutout=0)
    loader = BatchLoader(data, STATS, 32, train=True, aug=still, batched=BatchedConfig(translate=0, **mix),
                         targets=rows[labels] if soft else None)
    level = (torch.from_numpy(values).float() / 255 - 0.5) / 0.25  # each class's value, normalized
    per_share = torch.linalg.solve(rows, level)  # what a unit of each target column adds to the mean
    for epoch in range(3):
        loader.set_epoch(epoch)
        x, y = next(iter(loader))
        y = y if y.ndim > 1 else rows[y]
        assert y.shape == (32, 8) and torch.allclose(y.sum(1), torch.ones(32))
        torch.testing.assert_close(x.mean((1, 2, 3)), y @ per_share, atol=1e-4, rtol=0)  # image shares = target shares
        mixed = (y[:, None] - rows[None]).abs().sum(-1).min(1).values > 1e-6  # no class's own target
        assert mixed.any() == bool(mix)
