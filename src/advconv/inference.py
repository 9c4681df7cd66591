"""Using a trained net: top-k predictions for image files, and export to ONNX / TorchScript."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .checkpoint import InferenceRecord, load_model
from .data import ChannelStats, decode_image
from .files import atomic_write, atomic_write_bytes
from .loaders import normalize
from .loops import TestTimeViews

EXPORT_FORMATS = ("onnx", "torchscript")


def preprocess(images: np.ndarray, stats: ChannelStats) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> normalized (N, 3, H, W) float, as the net saw in training."""
    return normalize(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2), stats)


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class, probability), best first

    def line(self) -> str:
        return f"{self.path}: " + ", ".join(f"{cls} {100 * p:.1f}%" for cls, p in self.top)


@torch.no_grad()
def predict_files(source: str | Path, paths: Sequence[str | Path], top_k: int = 3, tta: bool | None = None,
                  tta_shift: int | None = None) -> list[Prediction]:
    """Top-k classes of each image file (any size or format, resized to the net's input size),
    averaged over the test-time views the run was evaluated with unless ``tta``/``tta_shift`` say
    otherwise: what predict says is what the reported accuracy measured."""
    trained = load_model(source)
    model, record = trained.net, trained.record
    viewed = with_views(model, record, tta, tta_shift)
    images = np.stack([decode_image(Path(p), str(p), record.input_size) for p in paths])  # DataError names a bad file
    probs = viewed(preprocess(images, record.stats)).softmax(1)
    k = min(top_k, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    return [Prediction(str(p), [(record.classes[i], float(v)) for v, i in zip(vs, ix)])
            for p, vs, ix in zip(paths, values.tolist(), indices.tolist())]


def with_views(model: nn.Module, record: InferenceRecord, tta: bool | None = None,
               tta_shift: int | None = None) -> TestTimeViews:
    """``model`` averaging over the record's test-time views, or over the ones given."""
    return TestTimeViews(model, record.tta if tta is None else tta,
                         record.tta_shift if tta_shift is None else tta_shift)


def export_model(model: nn.Module, path: str | Path, fmt: str, input_size: int = 32) -> Path:
    """Write ``model`` (eval mode, fp32) as ONNX (dynamic batch) or TorchScript."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    example = torch.randn(2, 3, input_size, input_size)
    if fmt == "onnx":
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=["image"],
                                    output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
        return atomic_write_bytes(path, program.model_proto.SerializeToString())
    traced = torch.jit.trace(model, example)
    return atomic_write(path, lambda f: torch.jit.save(traced, f))
