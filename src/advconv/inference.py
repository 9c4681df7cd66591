"""Using a trained net: top-k predictions for image files, and export to ONNX / TorchScript."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image
from torch import nn

from .checkpoint import InferenceRecord, TrainedModel, load_model
from .data import ChannelStats, decode_image, image_array
from .files import atomic_write, atomic_write_bytes
from .loaders import normalize
from .loops import TestTimeViews

EXPORT_FORMATS = ("onnx", "torchscript")


def preprocess(images: np.ndarray, stats: ChannelStats) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> normalized (N, 3, H, W) float, as the net saw in training."""
    return normalize(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2), stats)


@dataclass
class Prediction:
    path: str                     # the file, or "image i" for an in-memory image
    top: list[tuple[str, float]]  # (class, probability), best first

    def line(self) -> str:
        return f"{self.path}: " + ", ".join(f"{cls} {100 * p:.1f}%" for cls, p in self.top)


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
            tta: bool | None = None, tta_shift: int | None = None) -> list[Prediction]:
    """Top-k classes of each image, preprocessed as the net was trained (resized to its input
    size, normalized with its statistics) and averaged over the test-time views the run was
    evaluated with unless ``tta``/``tta_shift`` say otherwise: what predict says is what the
    reported accuracy measured. ``model``: a ``load_model`` result, or anything it takes."""
    trained = model if isinstance(model, TrainedModel) else load_model(model)
    record = trained.record
    batch, names = as_images(images, record.input_size)
    probs = with_views(trained.net, record, tta, tta_shift)(preprocess(batch, record.stats)).softmax(1)
    values, indices = probs.topk(min(top_k, probs.shape[1]), dim=1)
    return [Prediction(name, [(record.classes[i], float(v)) for v, i in zip(vs, ix)])
            for name, vs, ix in zip(names, values.tolist(), indices.tolist())]


def predict_files(source: str | Path, paths: Sequence[str | Path], top_k: int = 3, tta: bool | None = None,
                  tta_shift: int | None = None, chunk: int = 512) -> list[Prediction]:
    """``predict`` for image files, any size or format, ``chunk`` at a time."""
    trained, paths = load_model(source), list(paths)
    return [p for i in range(0, len(paths), chunk) for p in predict(trained, paths[i:i + chunk], top_k, tta, tta_shift)]


def write_csv(predictions: Sequence[Prediction], path: str | Path) -> Path:
    """One row per image: its path, then (class, probability) pairs, best first."""
    k = max((len(p.top) for p in predictions), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path"] + [f"{name}_{i + 1}" for i in range(k) for name in ("class", "probability")])
    for p in predictions:
        writer.writerow([p.path] + [v for cls, prob in p.top for v in (cls, f"{prob:.4f}")])
    return atomic_write_bytes(path, buffer.getvalue().encode())


def with_views(model: nn.Module, record: InferenceRecord, tta: bool | None = None,
               tta_shift: int | None = None) -> TestTimeViews:
    """``model`` averaging over the record's test-time views, or over the ones given."""
    return TestTimeViews(model, record.tta if tta is None else tta,
                         record.tta_shift if tta_shift is None else tta_shift)


def export_model(model: nn.Module, path: str | Path, fmt: str, input_size: int = 32,
                 record: InferenceRecord | None = None) -> Path:
    """Write ``model`` (eval mode, fp32) as ONNX (dynamic batch) or TorchScript. Both carry the
    ``record`` (classes, mean, std, input size, test-time views): ONNX in its metadata, so a
    runtime with no advconv and no torch can preprocess and label; TorchScript as the extra
    file ``record.json``."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    example = torch.randn(2, 3, input_size, input_size)
    if fmt == "onnx":
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=["image"], verbose=False,
                                    output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
        proto = program.model_proto
        if record is not None:
            onnx_metadata(proto, record, views_baked_in=isinstance(model, TestTimeViews))
        return atomic_write_bytes(path, proto.SerializeToString())
    traced = torch.jit.trace(model, example)
    extra = {"record.json": json.dumps(record.to_dict())} if record is not None else {}
    return atomic_write(path, lambda f: torch.jit.save(traced, f, _extra_files=extra))


def onnx_metadata(proto, record: InferenceRecord, views_baked_in: bool) -> None:
    """Set the model's metadata_props: what onnxruntime users need to feed it and read it."""
    import onnx

    views = {"flip": record.tta, "shift": record.tta_shift, "baked_in": views_baked_in}
    onnx.helper.set_model_props(proto, {
        "classes": json.dumps(list(record.classes)), "mean": json.dumps(list(record.mean)),
        "std": json.dumps(list(record.std)), "input_size": str(record.input_size),
        "input": "float32 (N, 3, H, W): RGB / 255, minus mean, divided by std, per channel",
        "test_time_views": json.dumps(views),
    })


@contextlib.contextmanager
def _quiet(logger: str):
    """onnxruntime's quantizer logs advice on the root logger; a user of ``export`` needs none."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def quantize_onnx(fp32: str | Path, path: str | Path, images: np.ndarray, stats: ChannelStats,
                  count: int = 512) -> tuple[Path, int]:
    """Static int8 quantization (onnxruntime, QDQ, per-channel int8 weights, uint8 activations: the
    pair x86 kernels run fastest) of an fp32 ONNX file,
    its activation ranges calibrated on ``count`` of ``images`` (N, H, W, 3 uint8 training
    images, drawn with a fixed seed); returns the path and how many images calibrated it."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pick = np.sort(np.random.default_rng(0).choice(len(images), min(count, len(images)), replace=False))
    calibration = images[pick]

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"image": preprocess(calibration[i:i + 64], stats).numpy()}
                                 for i in range(0, len(calibration), 64)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp, _quiet("root"):
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32), str(prepared))  # folds batch norms into the convs first
        quantize_static(str(prepared), str(out), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        proto = onnx.load(str(out))
        for prop in onnx.load(str(fp32)).metadata_props:  # the record travels on
            proto.metadata_props.append(prop)
        return atomic_write_bytes(path, proto.SerializeToString()), len(pick)
