"""Using a trained net: top-k predictions for images in any form, and the CSV of them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.datasets import ChannelStats, decode_image, image_array
from ..data.loaders import normalize
from ..errors import DataError, warn
from ..files import atomic_write_bytes
from .calibration import UNSURE, scores
from .checkpoint import InferenceRecord
from .hub import TrainedModel, load_model
from .views import TestTimeViews


def preprocess(images: np.ndarray, stats: ChannelStats) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> normalized (N, 3, H, W) float, as the net saw in training."""
    return normalize(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2), stats)


@dataclass
class Prediction:
    path: str                     # the file, or "image i" for an in-memory image
    top: list[tuple[str, float]]  # (class, probability), best first
    unsure: bool = False          # its score fell below the weights' unsure threshold

    def line(self) -> str:
        classes = ", ".join(f"{cls} {100 * p:.1f}%" for cls, p in self.top)
        return f"{self.path}: " + (f"{UNSURE} ({classes})" if self.unsure else classes)


ImageLike = Union[str, Path, Image.Image, np.ndarray, torch.Tensor]


def as_images(images: ImageLike | Sequence[ImageLike], size: int) -> tuple[np.ndarray, list[str]]:
    """Paths, PIL images, numpy arrays (H, W, 3 or N, H, W, 3; uint8, or float in [0, 1]) or
    tensors (3, H, W or N, 3, H, W; likewise) as one (N, size, size, 3) uint8 batch, with a
    name for each (the path, or ``image i``)."""
    if isinstance(images, (str, Path, Image.Image)):
        images = [images]
    elif isinstance(images, torch.Tensor):
        images = images.detach().cpu()
        images = list(images.permute(0, 2, 3, 1).numpy() if images.dim() == 4 else [images.permute(1, 2, 0).numpy()])
    elif isinstance(images, np.ndarray):
        images = list(images) if images.ndim == 4 else [images]
    arrays, names = [], []
    for i, item in enumerate(images):
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().permute(1, 2, 0).numpy()
        if isinstance(item, (str, Path)):
            arrays.append(decode_image(Path(item), str(item), size))  # DataError names a bad file
            names.append(str(item))
            continue
        if isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[-1] not in (1, 3, 4):
                raise ValueError(f"image {i}: expected (H, W, 3) pixels, got an array of shape {item.shape}")
            pixels = item if item.dtype == np.uint8 else (np.clip(item, 0, 1) * 255).round().astype(np.uint8)
            item = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)  # PIL wants (H, W) for grey
        if not isinstance(item, Image.Image):
            raise ValueError(f"image {i}: expected a path, a PIL image, an array or a tensor, got {type(item).__name__}")
        arrays.append(image_array(item, size))
        names.append(f"image {i}")
    return np.stack(arrays), names


@torch.no_grad()
def predict(model: TrainedModel | str | Path, images: ImageLike | Sequence[ImageLike], top_k: int = 3,
            tta_flip: bool | None = None, tta_shift: int | None = None) -> list[Prediction]:
    """Top-k classes of each image, preprocessed as the net was trained (resized to its input
    size, normalized with its statistics) and averaged over the test-time views the run was
    evaluated with unless ``tta_flip``/``tta_shift`` say otherwise: what predict says is what the
    reported accuracy measured. Probabilities follow the weights' temperature, and an image
    whose score falls below their unsure threshold is marked so. ``model``: a ``load_model``
    result, or anything it takes."""
    trained = model if isinstance(model, TrainedModel) else load_model(model)
    record = trained.record
    batch, names = as_images(images, record.input_size)
    logits = with_views(trained.net, record, tta_flip, tta_shift)(preprocess(batch, record.stats))
    probs = (logits / record.temperature).softmax(1)
    values, indices = probs.topk(min(top_k, probs.shape[1]), dim=1)
    unsure = [False] * len(names) if record.unsure_threshold is None else \
        (scores(logits, record.unsure_score, record.temperature) < record.unsure_threshold).tolist()
    return [Prediction(name, [(record.classes[i], float(v)) for v, i in zip(vs, ix)], flag)
            for name, vs, ix, flag in zip(names, values.tolist(), indices.tolist(), unsure)]


def predict_files(source: str | Path, paths: Sequence[str | Path], top_k: int = 3, tta_flip: bool | None = None,
                  tta_shift: int | None = None, chunk: int = 512, skip_corrupt: bool = False) -> list[Prediction]:
    """``predict`` for image files, any size or format, ``chunk`` at a time; ``skip_corrupt``
    leaves out, with a warning each, files that are not readable images."""
    trained, paths = load_model(source), list(paths)
    if skip_corrupt:
        paths = [p for p in paths if readable(p, trained.record.input_size)]
    return [p for i in range(0, len(paths), chunk)
            for p in predict(trained, paths[i:i + chunk], top_k, tta_flip, tta_shift)]


def readable(path: str | Path, size: int) -> bool:
    try:
        decode_image(Path(path), str(path), size)
        return True
    except DataError as exc:
        warn(f"skipping {exc}")
        return False


def write_csv(predictions: Sequence[Prediction], path: str | Path) -> Path:
    """One row per image: its path, then (class, probability) pairs, best first."""
    k = max((len(p.top) for p in predictions), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path"] + [f"{name}_{i + 1}" for i in range(k) for name in ("class", "probability")])
    for p in predictions:
        writer.writerow([p.path] + [v for cls, prob in p.top for v in (cls, f"{prob:.4f}")])
    return atomic_write_bytes(path, buffer.getvalue().encode())


def with_views(model: nn.Module, record: InferenceRecord, tta_flip: bool | None = None,
               tta_shift: int | None = None) -> TestTimeViews:
    """``model`` averaging over the record's test-time views, or over the ones given."""
    return TestTimeViews(model, record.tta_flip if tta_flip is None else tta_flip,
                         record.tta_shift if tta_shift is None else tta_shift)
