"""Where a training step spends its time: the top ops of torch.profiler, grouped by shape.

    python lab/benchmarks/profile_step.py --model lab/configs/a9v1_model.yaml

Shows which convolutions' backward passes dominate (bf16 autocast, channels_last, batch 512).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from advconv.api import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="assignment9")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--rows", type=int, default=8)
    args = parser.parse_args()
    model = resolve_model(args.model).to(memory_format=torch.channels_last)
    x = torch.randn(args.batch_size, 3, 32, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(3):
            step()
    print(f"model {args.model}, batch {args.batch_size}, bf16 channels_last, 3 steps")
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total",
                                                             row_limit=args.rows, max_name_column_width=28,
                                                             max_shapes_column_width=60))


if __name__ == "__main__":
    main()
