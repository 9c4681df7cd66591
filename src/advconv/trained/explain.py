"""Grad-CAM heatmaps (the grad-cam package) over a trained model's test or held-out images, saved as a PNG grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from torch import nn

from ..data.datasets import ChannelStats
from ..errors import ConfigError
from .evaluation import evaluate_checkpoint, sample_misclassified
from .inference import preprocess
from .manifest import record_outputs
from .plots import plot_image_grid


def conv_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """The net's conv blocks by name (c1..cN): the layers Grad-CAM looks at."""
    return {name: m for name, m in model.named_children() if name.startswith("c")}


def target_block(model: nn.Module, name: str | None = None) -> nn.Module:
    """The block ``name``, or the last one whose output still has a spatial map (c4 in the C1-C4 nets)."""
    blocks = conv_blocks(model)
    if not blocks:
        raise ConfigError("cannot find a conv block (c1..cN) to explain; pass a target layer")
    if name is not None and name not in blocks:
        raise ConfigError(f"no block {name!r}; the net's blocks are {', '.join(blocks)}")
    return blocks[name] if name is not None else list(blocks.values())[-1]


def gradcam_heatmaps(model: nn.Module, images: np.ndarray, classes_to_explain: Sequence[int],
                     stats: ChannelStats, target_layer: nn.Module | None = None) -> np.ndarray:
    """Where ``model`` looks for the given class of each image: (N, H, W) floats in [0, 1]."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = target_layer if target_layer is not None else target_block(model)
    with GradCAM(model=model.eval(), target_layers=[layer]) as cam:
        return cam(input_tensor=preprocess(images, stats),
                   targets=[ClassifierOutputTarget(int(c)) for c in classes_to_explain])


def blend(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """A heatmap coloured (jet) over an image of any size, ``opacity`` its share (0: the image)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    h, w = image.shape[:2]
    if heatmap.shape != (h, w):
        heatmap = np.asarray(Image.fromarray(heatmap.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
    return show_cam_on_image(image.astype(np.float32) / 255, np.clip(heatmap, 0, 1), use_rgb=True,
                             image_weight=1 - opacity)


def gradcam_overlays(model: nn.Module, images: np.ndarray, classes_to_explain: Sequence[int],
                     stats: ChannelStats, target_layer: nn.Module | None = None) -> np.ndarray:
    """Heatmaps of where ``model`` looks for the given class of each image, blended onto it."""
    heatmaps = gradcam_heatmaps(model, images, classes_to_explain, stats, target_layer)
    return np.stack([blend(img, h) for img, h in zip(images, heatmaps)])


@dataclass
class Explanation:
    """Chosen images of a split, each with its Grad-CAM overlay and its panel titles."""

    indices: np.ndarray     # into the split's images
    images: np.ndarray      # (N, H, W, 3) uint8
    overlays: np.ndarray    # the same, with the heatmap of the predicted class blended on
    titles: list[str]       # two per image: the image's, its overlay's
    split: str


def explain_images(source: str | Path, data: str | None = None, indices: Sequence[int] | None = None,
                   count: int = 12, split: str | None = None, cache_dir: str | Path | None = None,
                   layer: str | None = None) -> Explanation:
    """Grad-CAM of the predicted class at block ``layer`` (default: the last) for chosen images,
    or for ``count`` misclassified ones, of the run's own split (its held-out images when it had a
    validation split, else the test set) or ``split``."""
    evaluation = evaluate_checkpoint(source, data, split=split, cache_dir=cache_dir)
    model, record = evaluation.trained.net, evaluation.trained.record
    test, result = evaluation.images, evaluation.result
    preds, targets = result.predictions.numpy(), result.targets.numpy()
    if indices is None:
        chosen = sample_misclassified(preds, targets, count)
    else:
        chosen = np.asarray(indices, dtype=np.int64)
        if len(chosen) and (chosen.min() < 0 or chosen.max() >= len(targets)):
            raise ConfigError(f"{evaluation.split} image indices must lie in 0..{len(targets) - 1}")
    if len(chosen) == 0:
        raise ConfigError(f"no images to explain (no misclassified {evaluation.split} image found)")
    overlays = gradcam_overlays(model, test.images[chosen], preds[chosen], record.stats, target_block(model, layer))
    names = record.classes
    titles = [t for i in chosen for t in (f"#{i} true {names[targets[i]]}", f"Grad-CAM: {names[preds[i]]}")]
    return Explanation(chosen, test.images[chosen], overlays, titles, evaluation.split)


def explain_checkpoint(source: str | Path, output: str | Path, data: str | None = None,
                       indices: Sequence[int] | None = None, count: int = 12, split: str | None = None,
                       cache_dir: str | Path | None = None, layer: str | None = None) -> Path:
    """``explain_images`` as a PNG grid at ``output``: each image beside its overlay."""
    shown = explain_images(source, data, indices, count, split, cache_dir, layer)
    pairs = np.stack([shown.images, shown.overlays], axis=1).reshape(-1, *shown.images.shape[1:])
    written = plot_image_grid(pairs, shown.titles, output, cols=6)
    record_outputs([written])
    return written
