"""Training-step speed of models under each precision/layout, as seconds per CIFAR-10 epoch.

    python lab/benchmarks/train_step.py --models reference assignment9 [--batch-size 512] [--steps 8]

One synthetic batch, SGD step included; the median step time x steps per epoch (50,000
images). The first row of each model (fp32, NCHW) is the baseline of its ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from torch import nn

from advconv.api import resolve_model
from advconv.nets.summary import summarize
from advconv.runtime import cpu_supports_bf16

SETTINGS = (("fp32", "NCHW"), ("fp32", "channels_last"), ("bf16", "channels_last"))


def seconds_per_epoch(model: nn.Module, precision: str, layout: str, batch_size: int, steps: int,
                      compile_: bool = False) -> tuple[float, float]:
    """(seconds per epoch at the median step, seconds of the first step: compile or kernel setup)."""
    x, y = torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))
    if layout == "channels_last":
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    step_model = torch.compile(model) if compile_ else model
    times = []
    for _ in range(steps + 2):  # 2 warm-up steps: oneDNN picks its kernels, compile compiles
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext():
            loss = nn.functional.cross_entropy(step_model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[2:]) * 50_000 / batch_size, times[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["reference", "assignment9"])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--compile", action="store_true", help="add a torch.compile'd bf16 channels_last row")
    args = parser.parse_args()
    settings = SETTINGS + ((("bf16", "channels_last+compile"),) if args.compile else ())
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU bf16: {cpu_supports_bf16()}, "
          f"batch {args.batch_size}")
    print(f"{'model':<36} {'params':>8} {'MACs':>7}  {'precision':<9} {'layout':<22} {'s/epoch':>8} "
          f"{'speed-up':>8} {'first step s':>12}")
    for name in args.models:
        s = summarize(resolve_model(name))
        baseline = None
        for precision, layout in settings:
            secs, first = seconds_per_epoch(resolve_model(name), precision, layout.split("+")[0],
                                            args.batch_size, args.steps, compile_=layout.endswith("compile"))
            baseline = baseline or secs
            print(f"{name:<36} {s.total_params:>8,} {s.total_macs / 1e6:>6.1f}M  {precision:<9} {layout:<22} "
                  f"{secs:>8.1f} {baseline / secs:>7.2f}x {first:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
