"""Test accuracy of a checkpoint as deployed: PyTorch against its ONNX exports, with and without views.

    python benchmarks/onnx_accuracy.py --checkpoint runs/assignment9/last.pt --data ../shared/data/cifar10-jpeg.tar.gz

Exports the plain net and the net with the run's test-time views baked in (``advconv export
--tta``), runs both with onnxruntime over the whole test set, and prints them next to
``advconv evaluate`` (PyTorch, fp32) with and without the views: an ONNX user gets the figure
of the row that matches the file they exported.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from advconv.checkpoint import load_checkpoint, model_from_checkpoint
from advconv.inference import export_model, preprocess, with_views
from advconv.report import evaluate_checkpoint


def onnx_accuracy(path: Path, images: np.ndarray, labels: np.ndarray, stats, batch: int = 500) -> float:
    session = ort.InferenceSession(str(path))
    correct = 0
    for i in range(0, len(images), batch):
        (logits,) = session.run(None, {"image": preprocess(images[i:i + batch], stats).numpy()})
        correct += int((logits.argmax(1) == labels[i:i + batch]).sum())
    return 100 * correct / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", default=None, help="defaults to the data the run was trained on")
    args = parser.parse_args()
    model, record = model_from_checkpoint(load_checkpoint(args.checkpoint))
    viewed = with_views(model, record)
    views = f"flip {viewed.flip}, shift {viewed.shift}"
    plain = evaluate_checkpoint(args.checkpoint, args.data, tta=False, tta_shift=0)
    test = plain.test
    print(f"{args.checkpoint}: {len(test)} test images; the run's test-time views: {views}")
    print(f"{'what runs':<34} {'accuracy':>9}")
    print(f"{'PyTorch fp32, plain':<34} {plain.result.accuracy:>8.2f}%")
    print(f"{'PyTorch fp32, with the views':<34} {evaluate_checkpoint(args.checkpoint, args.data).result.accuracy:>8.2f}%")
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in (("plain", model), ("with the views (--tta)", viewed)):
            path = export_model(net, Path(tmp) / "m.onnx", "onnx", record.input_size)
            label = f"ONNX (onnxruntime), {name}"
            print(f"{label:<34} {onnx_accuracy(path, test.images, test.labels, record.stats):>8.2f}%")


if __name__ == "__main__":
    main()
