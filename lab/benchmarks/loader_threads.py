"""Data-loader workers x torch threads: seconds per training epoch with the albumentations pipeline.

    python lab/benchmarks/loader_threads.py [--steps 20] [--workers 0 1 2] [--threads 1 2]

On a small CPU, DataLoader workers (albumentations, one image at a time) and torch's own
threads (the training step) share the same cores; this times every pair on synthetic uint8
images with the assignment9 net (bf16 autocast where the CPU has it, channels_last) and the
course's augmentations, so the default of ``data.workers`` can be picked by measurement. The
first row is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from advconv.config import load_config
from advconv.data.datasets import ArrayDataset, channel_stats
from advconv.data.loaders import make_loaders
from advconv.runtime import Runtime, cpu_supports_bf16
from advconv.trained.hub import create_model
from advconv.training.optim import build_optimizer


def seconds_per_epoch(workers: int, threads: int, steps: int, images: ArrayDataset) -> float:
    torch.set_num_threads(threads)
    cfg = load_config(None, {"workers": workers, "pipeline": "albumentations"})
    loader = make_loaders(cfg, images, images, channel_stats(images.images))[0](0)
    model = create_model("assignment9").to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optim, model)
    rt = Runtime(torch.device("cpu"), torch.bfloat16 if cpu_supports_bf16() else None)
    times, batches = [], iter(loader)
    for _ in range(steps + 3):  # 3 warm-up steps: workers start, oneDNN picks kernels
        t = time.perf_counter()
        x, y = next(batches)
        with rt.autocast:
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[3:]) * len(loader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = ArrayDataset(rng.integers(0, 256, (50_000, 32, 32, 3), dtype=np.uint8),
                          rng.integers(0, 10, 50_000), tuple("0123456789"))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, CPU bf16: {cpu_supports_bf16()}, "
          f"assignment9, batch 512, albumentations pipeline, median of {args.steps} steps")
    print(f"{'workers':>7} {'threads':>7} {'s/epoch':>8} {'ratio':>6}")
    baseline = None
    for workers in args.workers:
        for threads in args.threads:
            seconds = seconds_per_epoch(workers, threads, args.steps, images)
            baseline = baseline or seconds
            print(f"{workers:>7} {threads:>7} {seconds:>8.1f} {seconds / baseline:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
