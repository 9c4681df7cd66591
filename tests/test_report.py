"""Figures of a run (plot), and what plotting or evaluating a run needs: readable checkpoints, its data."""

import re

import numpy as np

from advconv.cli import main
from advconv.trained.report import plot_run
from advconv.training.train import fit


def test_plot_and_evaluate_from_a_run(tmp_path, make_config, capsys):
    fit(make_config(epochs=1), progress=False)
    written = plot_run(tmp_path / "run")
    assert [p.name for p in written] == ["curves.png", "augmented.png", "misclassified.png", "confusion.png",
                                         "per_class.png", "reliability.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt")]) == 0
    assert re.search(r"Test set: Average loss: .*Accuracy: \d+/24", capsys.readouterr().out)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(bad)]) == 2
    assert f"checkpoint {bad} is unreadable" in capsys.readouterr().err


def test_augmented_samples_show_the_runs_pipeline(image_folder, tmp_path):
    from advconv.config import load_config
    from advconv.data.datasets import load_dataset
    from advconv.trained.report import augmented_samples

    train, _ = load_dataset(image_folder, tmp_path / "cache")
    for pipeline in ("batched", "albumentations"):
        plain = load_config(None, {"pipeline": pipeline, "hflip": 0.0, "cutout": 0.0, "translate": 0,
                                   "affine": 0.0})
        images, labels = augmented_samples(plain, train, count=8)
        assert images.shape == (8, 32, 32, 3) and images.dtype == np.uint8
        index = {tuple(img.ravel()[:64]): i for i, img in enumerate(train.images)}
        for img, label in zip(images, labels):  # no augmentation: the very images, labels kept
            i = index[tuple(img.ravel()[:64])]
            assert np.abs(img.astype(int) - train.images[i]).max() <= 1 and train.labels[i] == label
        holes = load_config(None, {"pipeline": pipeline, "cutout": 1.0, "cutout_size": 8})
        assert not np.array_equal(augmented_samples(holes, train, count=8)[0], images)
    mixed = load_config(None, {"pipeline": "batched", "mixup": 1.0})
    assert augmented_samples(mixed, train, count=8)[1].shape == (8,)  # a label each, as the grid shows them
