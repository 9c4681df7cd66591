"""How fast a receptive field is measured, against issue 51's targets, on this machine's cores.

    python lab/benchmarks/rf_speed.py > lab/benchmarks/results/rf_speed.txt

One layer's effective field (stem8's c4) over 64 mosaics of 96x96 pixels (the input `advconv rf`
uses), and one click on the demo page's receptive-field panel (one 32x32 image, through
``page.demo.unit_field``); the median of 5 runs after one warm-up each.
"""

import statistics
import time

import numpy as np
import torch

from advconv.nets.receptive import effective_fields, resolve_layer
from advconv.page.demo import SAMPLES, load_demo, read_image, unit_field
from advconv.trained.hub import load_model


def median_seconds(run, repeats: int = 5) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    net = load_model("stem8.default").net
    c4 = resolve_layer(net, "c4", 32)
    mosaics = torch.randn(64, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    layer = median_seconds(lambda: effective_fields(net, mosaics, [c4]))
    demo, image = load_demo("stem8.default"), read_image(SAMPLES / "cat.jpg")
    click = median_seconds(lambda: unit_field(demo, image, "c4", (60.0, 90.0)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"one layer's effective field, 64 images of 96x96: {layer:.2f} s (target: under 2 s)")
    print(f"one click on the page's panel, one 32x32 image: {click:.3f} s (target: under 1 s)")
    print(f"numpy {np.__version__}")
