"""What each layer kind costs on this CPU: forward + backward time per image, and effective GFLOP/s.

    python lab/benchmarks/layer_costs.py [--threads 2] [--batch 256] [--steps 10]

Every convolution kind a net here can be built from (dense 3x3, 1x1, depthwise 3x3/5x5/7x7,
dilated dense and depthwise, strided) and the norms and activations around them, each at the
map sizes and widths of a CIFAR net's stages, in fp32 and bf16 autocast, NCHW and
channels_last. The dense 3x3 conv of each row's shape is its baseline ("x dense"): a kind that
costs less per MAC than it is where compute should go. Shapes a net wants to try can be added
to SHAPES.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from torch import nn

from advconv.runtime import cpu_supports_bf16

# (map size, channels): the stages of a CIFAR net
SHAPES = ((32, 32), (16, 64), (8, 128))

KINDS = {  # name -> (module factory for c channels, MACs per output pixel for c channels)
    "dense 3x3": (lambda c: nn.Conv2d(c, c, 3, padding=1, bias=False), lambda c: 9 * c * c),
    "dense 3x3 dil 2": (lambda c: nn.Conv2d(c, c, 3, padding=2, dilation=2, bias=False), lambda c: 9 * c * c),
    "dense 3x3 stride 2": (lambda c: nn.Conv2d(c, c, 3, 2, 1, bias=False), lambda c: 9 * c * c / 4),
    "pointwise 1x1": (lambda c: nn.Conv2d(c, c, 1, bias=False), lambda c: c * c),
    "depthwise 3x3": (lambda c: nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), lambda c: 9 * c),
    "depthwise 5x5": (lambda c: nn.Conv2d(c, c, 5, padding=2, groups=c, bias=False), lambda c: 25 * c),
    "depthwise 7x7": (lambda c: nn.Conv2d(c, c, 7, padding=3, groups=c, bias=False), lambda c: 49 * c),
    "depthwise 3x3 dil 3": (lambda c: nn.Conv2d(c, c, 3, padding=3, dilation=3, groups=c, bias=False),
                            lambda c: 9 * c),
    "depthwise 3x3 stride 2": (lambda c: nn.Conv2d(c, c, 3, 2, 1, groups=c, bias=False), lambda c: 9 * c / 4),
    "batchnorm": (lambda c: nn.BatchNorm2d(c), lambda c: 0),
    "groupnorm (1 group)": (lambda c: nn.GroupNorm(1, c), lambda c: 0),
    "relu": (lambda c: nn.ReLU(), lambda c: 0),
    "gelu": (lambda c: nn.GELU(), lambda c: 0),
}


def seconds_per_image(module: nn.Module, size: int, channels: int, batch: int, steps: int, bf16: bool,
                      channels_last: bool) -> float:
    x = torch.randn(batch, channels, size, size, requires_grad=True)
    if channels_last:
        module, x = module.to(memory_format=torch.channels_last), x.detach().to(
            memory_format=torch.channels_last).requires_grad_()
    times = []
    for _ in range(steps + 2):  # 2 warm-up steps: oneDNN picks its kernels
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            out = module(x)
        out.float().sum().backward()
        times.append(time.perf_counter() - t)
    return statistics.median(times[2:]) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU bf16: {cpu_supports_bf16()}, batch "
          f"{args.batch}, forward + backward (input gradient and weight gradient), median of {args.steps}")
    settings = [("fp32", False, False), ("fp32", False, True), ("bf16", True, True)]
    header = f"{'map x ch':<9} {'kind':<24}" + "".join(f" {f'{p} {l}':>22}" for p, _, cl in settings
                                                         for l in ["NHWC" if cl else "NCHW"])
    print(header + "   (us/image | x dense 3x3 of the same setting; GFLOP/s for convs)")
    for size, channels in SHAPES:
        dense = {}
        for kind, (make, macs) in KINDS.items():
            cells = []
            for precision, bf16, cl in settings:
                s = seconds_per_image(make(channels), size, channels, args.batch, args.steps, bf16, cl)
                dense.setdefault((precision, cl), s)
                flops = 3 * 2 * macs(channels) * size * size  # forward + two backward convolutions
                rate = f"{flops / s / 1e9:5.0f}" if flops else "    -"
                cells.append(f"{s * 1e6:8.1f} {s / dense[(precision, cl)]:5.2f}x {rate}")
            print(f"{f'{size}x{channels}':<9} {kind:<24}" + "".join(f" {c:>22}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
