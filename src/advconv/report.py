"""From a run to numbers and figures: test accuracy, misclassified images, confusion, and what
the training pipeline showed the net."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import InferenceRecord
from .config import Config, config_from_dict
from .data import SPLIT_NAMES, ArrayDataset, channel_stats, hold_out, load_dataset, load_labelled
from .errors import CheckpointError, ConfigError, DataError
from .hub import TrainedModel, load_model
from .loaders import BatchLoader, make_loaders
from .loops import EvalResult, evaluate
from .plots import plot_confusion, plot_curves, plot_image_grid, plot_per_class


@dataclass
class CheckpointEvaluation:
    model: nn.Module
    record: InferenceRecord
    provenance: dict            # the run's config and epoch, or what shipped weights carry
    test: ArrayDataset
    result: EvalResult


def _data_config(trained: TrainedModel) -> dict:
    return trained.provenance.get("config", {}).get("data", {})


def data_of(trained: TrainedModel, data: str | Path | None) -> str | Path | None:
    """``data`` when given, else the data the model was trained on, if it is on this machine
    (None: torchvision's CIFAR-10, as in training). The cache is this machine's (``cache_dir_of``)."""
    if data is not None:
        return data
    stored = _data_config(trained).get("path")
    if stored is not None and not Path(stored).expanduser().exists():
        raise DataError(f"the data this model was trained on, {stored}, is not on this machine: "
                        "give the data with --data PATH")
    return stored


def trained_on(trained: TrainedModel, data: str | Path | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """The (train, test) data ``trained`` was trained on, or ``data`` when given."""
    return load_dataset(data_of(trained, data), size=trained.record.input_size)


def labelled_for(trained: TrainedModel, data: str | Path | None = None) -> ArrayDataset:
    """Labelled images to evaluate ``trained`` on: ``data`` (a dataset's test/, or a bare
    <class>/ folder), else the test set of the data it was trained on."""
    source = data_of(trained, data)
    if source is None:
        return trained_on(trained)[1]  # torchvision's CIFAR-10
    return load_labelled(source, trained.record.classes, size=trained.record.input_size)


def held_out_for(trained: TrainedModel, data: str | Path | None = None) -> ArrayDataset:
    """The validation images ``trained``'s run held out of its training data (``data.val_split``):
    what a choice between recipes is scored on, so that the test set stays unseen."""
    count = _data_config(trained).get("val_split", 0)
    if not count:
        raise ConfigError("this model was trained without data.val_split: it has no held-out images to be scored on")
    return hold_out(trained_on(trained, data)[0], count)[1]


def evaluate_checkpoint(source: str | Path, data: str | None = None, tta: bool | None = None,
                        tta_shift: int | None = None, batch_size: int = 500,
                        split: str = "test") -> CheckpointEvaluation:
    """Test-set result of a trained model (anything ``load_model`` takes), on ``data`` or the data
    it was trained on; ``tta`` and ``tta_shift`` default to what the run used. ``split="val"``
    scores the images the run held out instead, so that test-time views or runs can be compared
    without looking at the test set."""
    if split not in SPLIT_NAMES:
        raise ConfigError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
    trained = load_model(source)
    model, record = trained.net, trained.record
    tta = record.tta if tta is None else tta
    tta_shift = record.tta_shift if tta_shift is None else tta_shift
    test = held_out_for(trained, data) if split == "val" else labelled_for(trained, data)
    loader = BatchLoader(test, record.stats, batch_size, train=False, channels_last=False)
    return CheckpointEvaluation(model, record, trained.provenance, test,
                                evaluate(model, loader, tta=tta, tta_shift=tta_shift))


def sample_misclassified(predictions: np.ndarray, targets: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of ``count`` misclassified images spread over the test set (it is sorted by
    class, so the first ones would all be airplanes)."""
    wrong = np.flatnonzero(predictions != targets)
    return np.sort(np.random.default_rng(seed).choice(wrong, min(count, len(wrong)), replace=False))


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (targets, predictions), 1)
    return matrix


def augmented_samples(cfg: Config, train: ArrayDataset, count: int = 20, epoch: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` training images as ``cfg``'s pipeline shows them to the net in ``epoch``
    (flips, shifts, cutout, mixing...), back in uint8 pixels; and their labels (of a mixed image,
    the class with the larger share)."""
    cfg = copy.deepcopy(cfg)
    cfg.batch_size, cfg.data.workers = count, 0
    stats = channel_stats(train.images)
    x, y = next(iter(make_loaders(cfg, train, train, stats)[0](epoch)))
    mean = torch.tensor(stats.mean).view(1, -1, 1, 1) * 255
    std = torch.tensor(stats.std).view(1, -1, 1, 1) * 255
    pixels = (x.float() * std + mean).clamp(0, 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy(), (y.argmax(1) if y.ndim > 1 else y).numpy()


def plot_run(run_dir: str | Path, data: str | None = None, n_misclassified: int = 25) -> list[Path]:
    """Curves from the metrics log; a grid of augmented training images; misclassified grid,
    confusion matrix and per-class accuracy of the final epoch (``last.pt``: never a checkpoint
    picked on the test set) on the test set."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.json"
    if not metrics.exists():
        raise CheckpointError(f"no metrics.json in {run_dir}; is it a training run directory?")
    evaluation = evaluate_checkpoint(run_dir / "last.pt", data)  # the data first: nothing is written without it
    trained = TrainedModel(evaluation.model, evaluation.record, evaluation.provenance)
    cfg = config_from_dict(evaluation.provenance["config"])
    train, _ = trained_on(trained, data)
    images, labels = augmented_samples(cfg, train)
    written = [plot_curves(json.loads(metrics.read_text()), run_dir / "curves.png")]
    written.append(plot_image_grid(images, [train.classes[i] for i in labels], run_dir / "augmented.png",
                                   title=f"Training images as the {cfg.data.pipeline} pipeline augments them"))
    result, test = evaluation.result, evaluation.test
    preds, targets = result.predictions.numpy(), result.targets.numpy()
    classes = test.classes
    wrong = sample_misclassified(preds, targets, n_misclassified)
    written.append(plot_image_grid(test.images[wrong],
                                   [f"{classes[targets[i]]} / {classes[preds[i]]}" for i in wrong],
                                   run_dir / "misclassified.png",
                                   title=f"Misclassified test images (true / predicted): "
                                         f"{int((preds != targets).sum())} of {len(targets)}"))
    matrix = confusion_matrix(targets, preds, len(classes))
    written.append(plot_confusion(matrix, classes, run_dir / "confusion.png"))
    per_class = 100 * matrix.diagonal() / matrix.sum(1).clip(min=1)
    written.append(plot_per_class(per_class, classes, run_dir / "per_class.png"))
    return written
