"""What keeping the pooled gradient channels_last saves: each net's training step with torch's
``AdaptiveAvgPool2d(1)`` against advconv's ``GlobalAvgPool``, as seconds per CIFAR-10 epoch.

    python lab/benchmarks/gap_layout.py --models assignment9 accurate

bf16 autocast + channels_last (the training default where the CPU has bf16), one synthetic
batch per step (`train_step.seconds_per_epoch`), the two poolings interleaved so that both see
the same machine state. Same values and gradients either way (tests/test_blocks.py).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from train_step import seconds_per_epoch

from advconv.api import resolve_model
from advconv.nets.blocks import GlobalAvgPool
from advconv.runtime import cpu_supports_bf16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["assignment9", "accurate"])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements per pooling")
    args = parser.parse_args()
    precision = "bf16" if cpu_supports_bf16() else "fp32"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {precision} channels_last, "
          f"batch {args.batch_size}; s/epoch, best of {args.repeats}")
    print(f"{'model':<36} {'AdaptiveAvgPool2d':>17} {'GlobalAvgPool':>13} {'speed-up':>8}")
    for name in args.models:
        best = {}
        for _ in range(args.repeats):
            for pool in (nn.AdaptiveAvgPool2d, GlobalAvgPool):
                torch.manual_seed(0)
                model = resolve_model(name)
                model.gap = nn.AdaptiveAvgPool2d(1) if pool is nn.AdaptiveAvgPool2d else GlobalAvgPool()
                secs, _ = seconds_per_epoch(model, precision, "channels_last", args.batch_size, args.steps)
                best[pool] = min(best.get(pool, secs), secs)
        old, new = best[nn.AdaptiveAvgPool2d], best[GlobalAvgPool]
        print(f"{name:<36} {old:>17.1f} {new:>13.1f} {old / new:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
