"""A trained net as a file other runtimes load: ONNX (optionally int8-quantized) or TorchScript,
carrying what feeding it needs."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.datasets import ChannelStats
from ..errors import ConfigError
from ..files import atomic_write, atomic_write_bytes
from .checkpoint import InferenceRecord
from .evaluation import trained_on
from .hub import beside, load_model
from .inference import preprocess, with_views
from .manifest import record_outputs
from .publish import hub_folder
from .views import TestTimeViews

EXPORT_FORMATS = ("onnx", "torchscript", "hub")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "hub": "_hub"}  # hub: a folder (publish.py)


def export_model(model: nn.Module, path: str | Path, fmt: str, input_size: int = 32,
                 record: InferenceRecord | None = None) -> Path:
    """Write ``model`` (eval mode, fp32) as ONNX (dynamic batch) or TorchScript. Both carry the
    ``record`` (classes, mean, std, input size, test-time views): ONNX in its metadata, so a
    runtime with no advconv and no torch can preprocess and label; TorchScript as the extra
    file ``record.json``."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
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

    views = {"flip": record.tta_flip, "shift": record.tta_shift, "baked_in": views_baked_in}
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


@dataclass
class Exported:
    paths: list[Path]                   # the files written
    calibrated_on: int | None = None    # training images that calibrated the int8 file
    note: str | None = None             # what the user should know about them


def export(source: str | Path, output: str | Path | None = None, fmt: str = "onnx", tta: bool = False,
           int8: bool = False, data: str | Path | None = None, calibration: int = 512,
           cache_dir: str | Path | None = None) -> Exported:
    """Export a trained model (anything ``load_model`` takes) to ``output`` (default: beside it,
    named after it). ``tta`` bakes the run's test-time views into the graph; ``int8`` also writes
    a quantized ONNX file calibrated on ``calibration`` training images of ``data`` (default: the
    data it was trained on). Every input is checked, and the data loaded, before a file is written."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if int8 and fmt != "onnx":
        raise ConfigError("int8 quantizes an ONNX file: use it with the onnx format")
    stem = "model" if Path(source).is_dir() else Path(source).name.removesuffix(".safetensors").removesuffix(".pt")
    output = Path(output) if output is not None else beside(source, stem + SUFFIXES[fmt])
    if fmt == "hub":
        return Exported([hub_folder(source, output)])
    trained = load_model(source)
    record, viewed = trained.record, with_views(trained.net, trained.record)
    calibration_images = trained_on(trained, data, cache_dir)[0].images if int8 else None
    paths, used = [export_model(viewed if tta else trained.net, output, fmt, record.input_size, record)], None
    if int8:
        path, used = quantize_onnx(output, output.with_suffix(".int8.onnx"), calibration_images, record.stats,
                                   calibration)
        paths.append(path)
    note = None
    if not tta and (viewed.flip or viewed.shift):
        note = (f"the run was evaluated with test-time views (flip {viewed.flip}, shift {viewed.shift}); "
                "this file scores the plain net, a little lower; --tta bakes the views into the graph")
    record_outputs(paths)
    return Exported(paths, used, note)
