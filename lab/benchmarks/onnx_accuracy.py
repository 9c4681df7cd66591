"""A trained model as deployed: test accuracy and speed of its ONNX files, fp32 and int8, plain and with views.

    python lab/benchmarks/onnx_accuracy.py --model runs/assignment9 --data ../shared/data/cifar10-jpeg.tar.gz

Exports what ``advconv export [--tta] [--int8]`` writes (the plain net and the net with the
run's test-time views baked in, each in fp32 and statically quantized int8, calibrated on 512
training images), runs each with onnxruntime over the whole test set, and prints the
accuracies next to ``advconv evaluate`` (PyTorch, fp32), plus images/s on one core at batch
256; the fp32 file of the same views is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from advconv.trained.evaluation import evaluate_checkpoint, trained_on
from advconv.trained.export import export_model, quantize_onnx
from advconv.trained.hub import load_model
from advconv.trained.inference import preprocess, with_views


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # one core: an edge device's share
    return ort.InferenceSession(str(path), options)


def accuracy_and_speed(path: Path, images: np.ndarray, labels: np.ndarray, stats, batch: int = 256):
    run, correct, seconds = session(path), 0, 0.0
    for i in range(0, len(images), batch):
        x = preprocess(images[i:i + batch], stats).numpy()
        t = time.perf_counter()
        (logits,) = run.run(None, {"image": x})
        seconds += time.perf_counter() - t
        correct += int((logits.argmax(1) == labels[i:i + batch]).sum())
    return 100 * correct / len(images), len(images) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a run directory, .pt, .safetensors or shipped name")
    parser.add_argument("--data", default=None, help="defaults to the data the run was trained on")
    parser.add_argument("--calibration", type=int, default=512)
    args = parser.parse_args()
    trained = load_model(args.model)
    record = trained.record
    train, test = trained_on(trained, args.data)
    viewed = with_views(trained.net, record)
    print(f"{args.model}: {len(test)} test images; the run's test-time views: flip {viewed.flip}, "
          f"shift {viewed.shift}; onnxruntime {ort.__version__}, 1 thread, batch 256")
    print(f"{'what runs':<36} {'accuracy':>9} {'img/s':>8} {'ratio':>6}")
    for tta in (False, True):
        name = "with the views" if tta else "plain"
        torch_acc = evaluate_checkpoint(args.model, args.data, tta=viewed.flip if tta else False,
                                        tta_shift=viewed.shift if tta else 0).result.accuracy
        print(f"{'PyTorch fp32, ' + name:<36} {torch_acc:>8.2f}%")
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export_model(viewed if tta else trained.net, Path(tmp) / "m.onnx", "onnx", record.input_size, record)
            int8, _ = quantize_onnx(fp32, Path(tmp) / "m.int8.onnx", train.images, record.stats, args.calibration)
            baseline = None
            for label, path in (("fp32", fp32), ("int8", int8)):
                acc, speed = accuracy_and_speed(path, test.images, test.labels, record.stats)
                baseline = baseline or speed
                print(f"{f'ONNX {label}, {name}':<36} {acc:>8.2f}% {speed:>8.0f} {speed / baseline:>6.2f}")


if __name__ == "__main__":
    main()
