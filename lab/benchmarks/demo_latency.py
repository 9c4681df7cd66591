"""How fast the demo page answers one uploaded image, with and without Grad-CAM, on this CPU.

    python lab/benchmarks/demo_latency.py [--model stem8.assignment9] [--repeats 20]

Times the page's own function (``demo.classify``) and the same request through the served page
(Gradio's HTTP API, on 127.0.0.1, as a browser's upload goes), each the median of timed repeats
after a warm-up; the plain answer without Grad-CAM is the baseline of the ratios. The upload is
one of the shipped examples enlarged to a 640x480 JPEG, as a phone photo would be shrunk.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from advconv.page.demo import SAMPLES, build_app, classify, load_demo
from advconv.trained.manifest import cpu_model


def median_seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stem8.assignment9")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    demo = load_demo(args.model)
    upload = Path(tempfile.mkdtemp()) / "photo.jpg"
    Image.open(SAMPLES / "horse.jpg").resize((640, 480), Image.BICUBIC).save(upload, quality=90)
    layer = demo.blocks[-1]
    print(f"# {cpu_model()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"{args.model}, one {upload.stat().st_size:,}-byte 640x480 JPEG, median of {args.repeats}")
    plain = median_seconds(lambda: classify(demo, [upload], 3, False, layer, 0.5), args.repeats)
    cam = median_seconds(lambda: classify(demo, [upload], 3, True, layer, 0.5), args.repeats)
    print(f"classify, no Grad-CAM        {1000 * plain:7.1f} ms  1.00x")
    print(f"classify, Grad-CAM           {1000 * cam:7.1f} ms  {cam / plain:.2f}x")

    from gradio_client import Client, handle_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app(demo)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        served = median_seconds(lambda: client.predict([handle_file(str(upload))], 3, True, layer, 0.5,
                                                       api_name="/classify"), args.repeats)
        print(f"served page, Grad-CAM (HTTP) {1000 * served:7.1f} ms  {served / plain:.2f}x")
    finally:
        app.close()


if __name__ == "__main__":
    main()
