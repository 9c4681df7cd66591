"""Augmentation throughput (images/s) on one core: the course's albumentations pipeline per
image (normalized per batch, as training does) against BatchLoader's whole-batch torch ops, on
the same synthetic uint8 images.

    OMP_NUM_THREADS=1 python lab/benchmarks/augmentation.py [--images 10000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from advconv.config import AlbumentationsConfig, AugmentConfig, BatchedConfig
from advconv.data.datasets import ArrayDataset, ChannelStats
from advconv.data.loaders import AlbumentationsDataset, BatchLoader, Normalized, albumentations_transform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8),
                        rng.integers(0, 10, args.images), tuple("0123456789"))
    stats = ChannelStats((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    aug, batched = AugmentConfig(cutout=0.5), BatchedConfig(translate=4)

    dataset = AlbumentationsDataset(data, albumentations_transform(stats, aug, AlbumentationsConfig(), train=True))
    album_loader = Normalized(torch.utils.data.DataLoader(dataset, 512), stats, channels_last=True)
    t = time.perf_counter()
    seen = sum(len(y) for _, y in album_loader)
    album = seen / (time.perf_counter() - t)

    loader = BatchLoader(data, stats, 512, train=True, aug=aug, batched=batched)
    t = time.perf_counter()
    seen = sum(len(y) for _, y in loader)
    batched = seen / (time.perf_counter() - t)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.images} images")
    print(f"albumentations (flip, affine, cutout) per image, normalize:  {album:>9,.0f} img/s")
    print(f"BatchLoader (flip, translate, cutout, normalize), batch 512:  {batched:>9,.0f} img/s "
          f"({batched / album:.1f}x)")


if __name__ == "__main__":
    main()
