"""Accuracy under ordinary image damage, in the manner of CIFAR-10-C: noise, blur, contrast,
brightness and JPEG, each at three severities, on the test split (or, with ``--split val``, on
the validation images a run trained with ``data.val_split`` held out: for choosing recipes).

    python lab/benchmarks/corruptions.py --model assignment9 --data ../shared/data/cifar10-jpeg.tar.gz
        [--model runs/best ...] [--split test|val] [--save DIR]

Each corruption is a pure function of the clean test images and a fixed seed, so every model
is scored on the same damaged copies (``--save DIR`` writes them as .npz). Models are
evaluated with their own test-time views, as ``advconv evaluate`` does; the clean accuracy is
the baseline of each row's mean.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from advconv.data.datasets import ArrayDataset
from advconv.data.loaders import BatchLoader
from advconv.files import atomic_write
from advconv.trained.evaluation import held_out_for, labelled_for
from advconv.trained.hub import load_model
from advconv.trained.inference import with_views
from advconv.training.loops import evaluate


def _per_image(images: np.ndarray, fn) -> np.ndarray:
    return np.stack([np.asarray(fn(Image.fromarray(img)).convert("RGB"), dtype=np.uint8) for img in images])


def _jpeg(quality: int):
    def encode(img: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue()))
    return encode


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


# name -> (severity 1, 2, 3) -> function of (N, H, W, 3) uint8 images and a numpy Generator
CORRUPTIONS = {
    "gaussian noise": [lambda x, g, s=s: _to_uint8(x / 255 + g.normal(0, s, x.shape)) for s in (0.04, 0.08, 0.12)],
    "gaussian blur": [lambda x, g, r=r: _per_image(x, lambda im: im.filter(ImageFilter.GaussianBlur(r)))
                      for r in (0.6, 1.0, 1.5)],
    "contrast": [lambda x, g, c=c: _to_uint8((x / 255 - (x / 255).mean((1, 2, 3), keepdims=True)) * c
                                             + (x / 255).mean((1, 2, 3), keepdims=True)) for c in (0.6, 0.4, 0.25)],
    "brightness": [lambda x, g, b=b: _to_uint8(x / 255 + b) for b in (0.1, 0.2, 0.3)],
    "jpeg": [lambda x, g, q=q: _per_image(x, _jpeg(q)) for q in (50, 25, 12)],
}


def corrupted(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """The test images damaged by ``name`` at ``severity`` (1-3), the same for every caller."""
    return CORRUPTIONS[name][severity - 1](images, np.random.default_rng(seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", required=True, help="shipped names, run dirs, .safetensors or .pt")
    parser.add_argument("--data", default=None, help="defaults to the data each model was trained on")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="val: the images each model's run held out of training (data.val_split)")
    parser.add_argument("--save", default=None, metavar="DIR", help="also write each damaged copy as .npz")
    args = parser.parse_args()
    header = f"{'model':<28} {'clean':>6} " + " ".join(f"{n + ' 1/2/3':>24}" for n in CORRUPTIONS) + " mean"
    print(header)
    for source in args.model:
        trained = load_model(source)
        test = held_out_for(trained, args.data) if args.split == "val" else labelled_for(trained, args.data)
        viewed = with_views(trained.net, trained.record)

        def accuracy(images: np.ndarray) -> float:
            loader = BatchLoader(ArrayDataset(images, test.labels, test.classes), trained.record.stats, 500,
                                 train=False, channels_last=False)
            return evaluate(viewed.model, loader, tta=viewed.flip, tta_shift=viewed.shift).accuracy

        clean, cells, damaged = accuracy(test.images), [], []
        for name in CORRUPTIONS:
            scores = []
            for severity in (1, 2, 3):
                images = corrupted(test.images, name, severity)
                if args.save:
                    path = Path(args.save) / f"{name.replace(' ', '_')}_{severity}.npz"
                    atomic_write(path, lambda f: np.savez(f, images=images, labels=test.labels))
                scores.append(accuracy(images))
            damaged += scores
            cells.append("/".join(f"{a:.1f}" for a in scores))
        print(f"{source:<28} {clean:>6.2f} " + " ".join(f"{c:>24}" for c in cells) + f" {np.mean(damaged):.2f}",
              flush=True)


if __name__ == "__main__":
    main()
