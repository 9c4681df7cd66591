"""Inference throughput (images/s) of a model at batch 1 and 256, fp32 and bf16, on this CPU.

    python lab/benchmarks/inference.py --model assignment9 [--checkpoint runs/x/best.pt] [--seconds 3]

Weights do not change the speed, so a checkpoint is optional. Each figure is the median
of timed repeats after a warm-up; the fp32 NCHW batch-1 run is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch

from advconv.runtime import cpu_supports_bf16
from advconv.trained.checkpoint import load_checkpoint
from advconv.trained.hub import create_model


def images_per_second(model, batch: int, bf16: bool, channels_last: bool, seconds: float) -> float:
    x = torch.randn(batch, 3, 32, 32)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    rates = []
    with torch.inference_mode(), ctx:
        for _ in range(3):
            model(x)  # warm-up: oneDNN picks and caches its kernels
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(rates) < 5:
            t = time.perf_counter()
            model(x)
            rates.append(batch / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="assignment9")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per setting")
    args = parser.parse_args()
    if args.checkpoint:
        model = load_checkpoint(args.checkpoint).net()
    else:
        model = create_model(args.model).eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU bf16: {cpu_supports_bf16()}")
    baseline = None
    print(f"{'batch':>5}  {'precision':<9}  {'layout':<13}  {'img/s':>9}  {'x baseline':>10}")
    for batch in (1, 256):
        for bf16 in (False, True):
            for channels_last in (False, True):
                rate = images_per_second(model, batch, bf16, channels_last, args.seconds)
                baseline = baseline or rate
                print(f"{batch:>5}  {'bf16' if bf16 else 'fp32':<9}  "
                      f"{'channels_last' if channels_last else 'NCHW':<13}  {rate:>9.0f}  {rate / baseline:>10.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
