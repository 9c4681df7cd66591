"""Figures of a run: its curves, what the training pipeline showed the net, and the final epoch's
misclassified images, confusion and per-class accuracy on the test set."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from ..config import Config, config_from_dict
from ..data.datasets import SPLIT_NAMES, ArrayDataset, channel_stats
from ..data.loaders import make_loaders
from ..errors import CheckpointError
from . import runfiles
from .evaluation import evaluate_checkpoint, sample_misclassified, trained_on
from .manifest import record_outputs
from .plots import plot_confusion, plot_curves, plot_image_grid, plot_per_class, plot_reliability


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


def plot_run(run_dir: str | Path, data: str | None = None, n_misclassified: int = 25, split: str | None = None,
             cache_dir: str | Path | None = None) -> list[Path]:
    """Curves from the metrics log; a grid of augmented training images; misclassified grid,
    confusion matrix and per-class accuracy of the final epoch (``last.pt``: never a checkpoint
    picked on the test set) on the run's own split (its held-out images when it had a validation
    split, else the test set) or ``split``."""
    run_dir = Path(run_dir)
    metrics = run_dir / runfiles.METRICS_JSON
    if not metrics.exists():
        raise CheckpointError(f"no metrics.json in {run_dir}; is it a training run directory?")
    # the data first: nothing is written without it
    evaluation = evaluate_checkpoint(run_dir / runfiles.LAST, data, split=split, cache_dir=cache_dir)
    trained = evaluation.trained
    cfg = config_from_dict(trained.provenance["config"])
    train, _ = trained_on(trained, data, cache_dir)
    images, labels = augmented_samples(cfg, train)
    written = [plot_curves(json.loads(metrics.read_text()), run_dir / runfiles.CURVES)]
    written.append(plot_image_grid(images, [train.classes[i] for i in labels], run_dir / runfiles.AUGMENTED,
                                   title=f"Training images as the {cfg.data.pipeline} pipeline augments them"))
    result, test = evaluation.result, evaluation.images
    shown = SPLIT_NAMES[evaluation.split].lower()
    preds, targets = result.predictions.numpy(), result.targets.numpy()
    classes = test.classes
    wrong = sample_misclassified(preds, targets, n_misclassified)
    written.append(plot_image_grid(test.images[wrong],
                                   [f"{classes[targets[i]]} / {classes[preds[i]]}" for i in wrong],
                                   run_dir / runfiles.MISCLASSIFIED,
                                   title=f"Misclassified {shown} images (true / predicted): "
                                         f"{int((preds != targets).sum())} of {len(targets)}"))
    matrix = confusion_matrix(targets, preds, len(classes))
    written.append(plot_confusion(matrix, classes, run_dir / runfiles.CONFUSION, shown))
    per_class = 100 * matrix.diagonal() / matrix.sum(1).clip(min=1)
    written.append(plot_per_class(per_class, classes, run_dir / runfiles.PER_CLASS, shown))
    written.append(plot_reliability(result.logits, result.targets, trained.record.temperature,
                                    run_dir / runfiles.RELIABILITY, shown))
    record_outputs(written)
    return written
