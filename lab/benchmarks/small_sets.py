"""Build small real image sets out of the CIFAR-10 tarball, to measure what the defaults do
on a data set of a user's size (a few hundred to two thousand images).

    python lab/benchmarks/small_sets.py --data ../shared/data/cifar10-jpeg.tar.gz --out runs/small

writes ``OUT/cifar10-100`` (all 10 classes, 100 training and 50 test images each) and
``OUT/cifar3-500`` (cat, dog, horse: 500 training and 100 test images each) as image folders,
the first images of each class in the tarball's order; and a transfer split: ``OUT/source5``
(airplane, automobile, bird, cat, deer, all their images) to train a starting net on, and
``OUT/target5-100``, ``OUT/target5-500`` (the other five classes, 100 or 500 training images
each and all 1,000 test images each) to fine-tune it on. With ``--digits``, also
``OUT/digits-100``: real images that are not CIFAR-10's (``write_digits``).
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

SOURCE = ("airplane", "automobile", "bird", "cat", "deer")  # the transfer split: train on these...
TARGET = ("dog", "frog", "horse", "ship", "truck")         # ...then fine-tune on these, never seen
SETS = {"cifar10-100": (None, 100, 50), "cifar3-500": (("cat", "dog", "horse"), 500, 100),
        "source5": (SOURCE, 5000, 1000), "target5-100": (TARGET, 100, 1000), "target5-500": (TARGET, 500, 1000)}


def write_digits(out: Path, per_class_train: int = 100, size: int = 32) -> Path:
    """A small set of real images that are not CIFAR-10's: the UCI handwritten digits bundled with
    scikit-learn (1,797 scans of 8x8 pixels, 16 grey levels), stretched to ``size`` pixels as RGB
    PNGs; the first ``per_class_train`` of each digit train, the rest test."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    seen: dict[int, int] = {}
    for image, label in zip(digits.images, digits.target):
        split = "train" if seen.get(label, 0) < per_class_train else "test"
        seen[label] = seen.get(label, 0) + 1
        folder = out / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        grey = Image.fromarray((image * 255 / 16).astype("uint8")).resize((size, size), Image.BICUBIC)
        grey.convert("RGB").save(folder / f"{seen[label]:04d}.png")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the CIFAR-10 JPEG tarball")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--digits", action="store_true", help="also OUT/digits-100 (needs scikit-learn)")
    args = parser.parse_args()
    taken: dict[tuple[str, str, str], int] = {}
    with tarfile.open(args.data) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[-3] not in ("train", "test"):
                continue
            split, cls = parts[-3], parts[-2]
            for name, (classes, train_n, test_n) in SETS.items():
                limit = train_n if split == "train" else test_n
                if (classes is None or cls in classes) and taken.get((name, split, cls), 0) < limit:
                    taken[(name, split, cls)] = taken.get((name, split, cls), 0) + 1
                    target = args.out / name / split / cls / parts[-1]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(member).read())
    if args.digits:
        write_digits(args.out / "digits-100")
    for name in list(SETS) + (["digits-100"] if args.digits else []):
        for split in ("train", "test"):
            print(f"{args.out / name / split}: {sum(1 for _ in (args.out / name / split).glob('*/*'))} images")


if __name__ == "__main__":
    main()
