"""Figures of a run, written as PNG files (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..files import atomic_write


def _subplots(*grid: int, figsize: tuple[float, float]):
    """A figure of its own (no pyplot, no screen) and its axes; matplotlib is imported here, when a
    figure is drawn, so that importing advconv does not pay for it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid)


def save_figure(fig, path: str | Path) -> Path:
    fig.tight_layout()
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))


def plot_curves(history: Sequence[dict], path: str | Path) -> Path:
    """Train and test (or validation) loss and accuracy per epoch (tested epochs only, with
    ``eval_every``)."""
    split = "val" if "val_acc" in history[0] else "test"
    epochs = [h["epoch"] for h in history]
    tested = [h for h in history if h[f"{split}_acc"] is not None]
    fig, (ax_loss, ax_acc) = _subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot([h["epoch"] for h in tested], [h[f"{split}_loss"] for h in tested], label=split)
    ax_loss.set(title="Loss", xlabel="epoch")
    ax_acc.plot(epochs, [h["train_acc"] for h in history], label="train")
    ax_acc.plot([h["epoch"] for h in tested], [h[f"{split}_acc"] for h in tested], label=split)
    best = max(h[f"{split}_acc"] for h in tested)
    ax_acc.axhline(best, color="grey", lw=0.8, ls="--")
    ax_acc.set(title=f"Accuracy (best {split} {best:.2f}%)", xlabel="epoch", ylabel="%")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def plot_image_grid(images: np.ndarray, titles: Sequence[str], path: str | Path, cols: int = 5,
                    title: str | None = None) -> Path:
    """Images (N, H, W, 3 uint8) in a grid, each with its title (e.g. 'true / predicted')."""
    rows = max(1, -(-len(images) // cols))
    fig, axes = _subplots(rows, cols, figsize=(cols * 2, rows * 2.2))
    if title:
        fig.suptitle(title)
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, img, title in zip(np.atleast_1d(axes).ravel(), images, titles):
        ax.imshow(img)
        ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], path: str | Path, split: str = "test") -> Path:
    fig, ax = _subplots(figsize=(7, 6))
    im = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix ({split} set)")
    threshold = confusion.max() / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if confusion[i, j] > threshold else "black")
    fig.colorbar(im, ax=ax)
    return save_figure(fig, path)


def plot_per_class(accuracy: Sequence[float], classes: Sequence[str], path: str | Path, split: str = "test") -> Path:
    fig, ax = _subplots(figsize=(8, 3.5))
    ax.bar(classes, accuracy, color="tab:blue")
    for i, a in enumerate(accuracy):
        ax.text(i, a + 0.5, f"{a:.1f}", ha="center", fontsize=8)
    ax.set(ylabel="accuracy %", ylim=(0, 105), title=f"Per-class {split} accuracy")
    ax.tick_params(axis="x", rotation=45)
    return save_figure(fig, path)


def plot_lr_range(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
                  suggestion: float | None, path: str | Path) -> Path:
    """A range test's loss against the learning rate (log scale), with the suggested peak if any."""
    fig, ax = _subplots(figsize=(7, 4))
    ax.plot(lrs, losses, color="tab:blue", alpha=0.3, lw=0.8, label="loss")
    ax.plot(lrs, smoothed, color="tab:blue", label="smoothed")
    if suggestion is not None:
        ax.axvline(suggestion, color="tab:red", ls="--", lw=1, label=f"suggested peak {suggestion:.3g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="Learning-rate range test")
    low, high = min(smoothed), max(smoothed[0], min(smoothed) * 2)
    ax.set_ylim(low - 0.1 * (high - low), high + 0.2 * (high - low))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_unit_field(image: np.ndarray, field, path: str | Path, title: str) -> Path:
    """An image (H, W, 3 uint8) with one unit's effective field as a heatmap and its theoretical
    square outlined; ``field`` is a ``nets.receptive.UnitField`` measured on that input's size."""
    from matplotlib.patches import Rectangle

    fig, (ax_image, ax_field) = _subplots(1, 2, figsize=(9, 4.6))
    square = field.square
    for ax, shown in ((ax_image, None), (ax_field, field.gradient)):
        ax.imshow(image)
        if shown is not None:
            ax.imshow(shown / max(shown.max(), 1e-12), cmap="inferno", alpha=0.75)
        ax.add_patch(Rectangle((square.left - 0.5, square.top - 0.5), square.right - square.left + 1,
                               square.bottom - square.top + 1, fill=False, color="cyan", lw=1.5))
        ax.axis("off")
    ax_image.set_title("theoretical field (cyan)" + (", clipped" if square.clipped else ""))
    sides = ", ".join(f"{int(100 * q)} %: {s} px" for q, s in field.sides.items())
    ax_field.set_title(f"effective field: {sides}")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_field_growth(layers: Sequence[str], theoretical: Sequence[int], effective: dict[str, Sequence[int]],
                      path: str | Path, title: str) -> Path:
    """Theoretical and effective (95 %) field sides, layer by layer; ``effective`` by weights."""
    fig, ax = _subplots(figsize=(max(7.0, 0.45 * len(layers)), 4.2))
    steps = range(len(layers))
    ax.step(steps, theoretical, where="mid", color="black", label="theoretical")
    for (label, sides), style in zip(effective.items(), ("--", "-")):
        ax.plot(steps, sides, style, marker="o", ms=3, label=f"effective 95 % ({label})")
    ax.set_xticks(list(steps), layers, rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="side in input pixels", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_reliability(logits, labels, temperature: float, path: str | Path, split: str = "test") -> Path:
    """The reliability diagram: accuracy against stated confidence in equal-width bins, as trained
    and (when one was fitted) with the temperature, with each curve's expected calibration error."""
    from .calibration import BINS, calibration_error

    fig, ax = _subplots(figsize=(5.5, 5))
    edges = np.linspace(0, 1, BINS + 1)
    curves = [(1.0, "as trained")] + ([(temperature, f"temperature {temperature:.2f}")] if temperature != 1.0 else [])
    for t, label in curves:
        confidence, predicted = (logits.float() / t).softmax(1).max(1)
        confidence, right = confidence.numpy(), (predicted == labels).float().numpy()
        bins = np.clip(np.digitize(confidence, edges) - 1, 0, BINS - 1)
        shown = [b for b in range(BINS) if (bins == b).any()]
        ax.plot([confidence[bins == b].mean() for b in shown], [right[bins == b].mean() for b in shown], "o-",
                label=f"{label}: ECE {calibration_error(logits, labels, t):.2f} %")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    ax.set(xlabel="confidence (top probability)", ylabel=f"accuracy on the {split} images", xlim=(0, 1), ylim=(0, 1),
           title=f"Reliability ({BINS} bins)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
