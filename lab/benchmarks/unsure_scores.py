"""Which score tells "none of the classes" apart, at the threshold that keeps 95 % of CIFAR-10?

    pip install scikit-image   # its bundled pictures; scikit-learn's digits come with the test extras
    python lab/benchmarks/unsure_scores.py --data ../shared/data/cifar10-jpeg.tar.gz \
        --near RUN_5CLASS --near-in runs/small/source5 --near-out runs/small/target5-500 \
        stem8.default stem8_hardswish.accurate > lab/results/unsure/unsure_scores.md

For each set of weights: its logits on the CIFAR-10 test set (fp32, its test-time views) give the
temperature and the threshold of each score (``calibration.calibrate``: fitted on one half of the
test set, the share flagged reported on the other, both ways); then the share flagged of
out-of-distribution sets made here from packages: scikit-image's bundled pictures that show none
of the ten classes, scikit-learn's 1,797 handwritten digits, and (the hard case) the CIFAR-10
classes held out of a net trained on the other five (``--near``).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from advconv.data.datasets import ArrayDataset, image_array, load_labelled
from advconv.trained.calibration import SCORES, calibrate, scores
from advconv.trained.evaluation import labelled_for
from advconv.trained.hub import load_model
from advconv.trained.scoring import score

# scikit-image's bundled pictures; those showing a CIFAR-10 class (or close to one) are left out
NOT_CIFAR = ("astronaut", "brick", "camera", "checkerboard", "clock", "coffee", "coins", "colorwheel", "grass",
             "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "retina", "text",
             "cell", "microaneurysms", "shepp_logan_phantom", "binary_blobs", "lily", "skin")
LEFT_OUT = ("chelsea", "cat", "horse", "eagle", "rocket", "stereo_motorcycle")  # a cat, a horse, a bird, ...


def pictures(size: int) -> tuple[np.ndarray, list[str]]:
    from PIL import Image
    from skimage import data

    images, names = [], []
    for name in NOT_CIFAR:
        try:
            pixels = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a picture this scikit-image does not bundle offline
            continue
        if pixels.dtype == bool:
            pixels = pixels.astype(np.uint8) * 255
        if pixels.dtype != np.uint8:
            pixels = (255 * (pixels - pixels.min()) / max(np.ptp(pixels), 1e-9)).astype(np.uint8)
        if pixels.ndim == 3 and pixels.shape[-1] == 4:
            pixels = pixels[..., :3]
        images.append(image_array(Image.fromarray(pixels), size))
        names.append(name)
    return np.stack(images), names


def digits(size: int) -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_digits

    return np.stack([image_array(Image.fromarray((d * 255 / 16).astype(np.uint8)), size)
                     for d in load_digits().images])


def logits_of(trained, images: np.ndarray) -> torch.Tensor:
    unlabelled = ArrayDataset(images, np.zeros(len(images), dtype=np.int64), trained.record.classes)
    return score(trained, unlabelled).logits


def flagged(trained, test, ood: dict[str, np.ndarray]) -> list[str]:
    """One row a score: the share of each set flagged at the threshold keeping 95 % of ``test``."""
    result = score(trained, test)
    rows = []
    for kind in SCORES:
        found = calibrate(result.logits, result.targets, kind, held_out=False)
        t, line = found.temperature, []
        in_dist = scores(result.logits, kind, t) < found.unsure_threshold
        line.append(f"{100 * in_dist.float().mean():.1f} %")
        for images in ood.values():
            line.append(f"{100 * (scores(logits_of(trained, images), kind, t) < found.unsure_threshold).float().mean():.1f} %")
        rows.append(f"| {kind} (T {t:.2f}, threshold {found.unsure_threshold:.4g}) | " + " | ".join(line) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--near", help="a run trained on five classes only")
    parser.add_argument("--near-in", help="an image folder of those five classes (its test/ is used)")
    parser.add_argument("--near-out", help="an image folder of the other five (its test/ is used)")
    parser.add_argument("weights", nargs="+")
    args = parser.parse_args()
    for source in args.weights:
        trained = load_model(source)
        size = trained.record.input_size
        found, names = pictures(size)
        ood = {f"scikit-image pictures ({len(names)})": found, "scikit-learn digits (1,797)": digits(size)}
        test = labelled_for(trained, args.data)
        print(f"\n### {source}\n\n| score | CIFAR-10 test flagged | " + " | ".join(ood) + " |")
        print("|---|" + "---|" * (len(ood) + 1))
        print("\n".join(flagged(trained, test, ood)))
        print(f"\nscikit-image pictures used: {', '.join(names)}; left out: {', '.join(LEFT_OUT)}")
    if args.near:
        trained = load_model(args.near)
        inside = load_labelled(Path(args.near_in) / "test", trained.record.classes)
        outside = load_labelled(Path(args.near_out) / "test", tuple(sorted({p.parent.name for p in
                                (Path(args.near_out) / "test").glob("*/*")})))
        print(f"\n### {args.near}: five classes held out (near-distribution)\n\n| score | its five classes' test "
              f"flagged | the other five classes' test images ({len(outside)}) |\n|---|---|---|")
        print("\n".join(flagged(trained, inside, {"near": outside.images})))


if __name__ == "__main__":
    main()
