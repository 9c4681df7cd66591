"""Whether this torch computes a dilated depthwise conv's weight gradient right in bf16.

    python lab/benchmarks/dilated_depthwise_grad.py

For each map size, dilation and memory layout, one depthwise 3x3 conv's forward and backward
under CPU bf16 autocast, against the same in fp32 NCHW (the baseline): the largest error of the
output, the input gradient and the weight gradient, relative to the baseline's largest value.
bf16 rounding alone gives about 0.005; near 1 is a wrong answer. Training tries each grouped
conv of a net both ways first (``runtime.channels_last_grads_right``) and trains NCHW where
channels_last is wrong, as for NetDilated (lab/configs/peers/), whose such convs see the full 32x32 map.
"""

from __future__ import annotations

import torch

BATCH, CHANNELS = 128, 32
CASES = [(size, dilation) for size in (8, 16, 32) for dilation in (1, 2, 4, 8) if 2 * dilation < size]


def run(conv: torch.nn.Conv2d, x: torch.Tensor, channels_last: bool, bf16: bool) -> list[torch.Tensor]:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = x.clone().to(memory_format=layout).requires_grad_()
    conv = conv.to(memory_format=layout)
    conv.zero_grad()
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        y = conv(x)
    y.float().square().mean().backward()
    return [y.float(), x.grad.float(), conv.weight.grad.float()]


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {BATCH}, {CHANNELS} channels")
    print("size dilation layout          output  input-grad  weight-grad")
    for size, dilation in CASES:
        conv = torch.nn.Conv2d(CHANNELS, CHANNELS, 3, padding=dilation, dilation=dilation, groups=CHANNELS,
                               bias=False)
        x = torch.randn(BATCH, CHANNELS, size, size)
        baseline = run(conv, x, channels_last=False, bf16=False)
        for channels_last in (False, True):
            errors = [((a - b).abs().max() / b.abs().max()).item()
                      for a, b in zip(run(conv, x, channels_last, bf16=True), baseline)]
            layout = "bf16 channels_last" if channels_last else "bf16 NCHW"
            print(f"{size:4d} {dilation:8d} {layout:18s}" + "".join(f"{e:12.3g}" for e in errors))


if __name__ == "__main__":
    main()
