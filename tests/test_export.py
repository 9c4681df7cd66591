"""Export to ONNX and TorchScript (with the record and the test-time views), and int8."""

import json

import numpy as np
import pytest
import torch

from advconv.cli import main
from advconv.nets.blocks import ACTIVATIONS
from advconv.trained.export import export_model
from advconv.trained.hub import create_model

from .conftest import net_and_record


def test_onnx_export_matches_pytorch(checkpoint, tmp_path):
    import onnxruntime as ort

    model, _ = net_and_record(checkpoint)
    path = export_model(model, tmp_path / "m.onnx", "onnx")
    session = ort.InferenceSession(str(path))
    for batch in (1, 7):
        x = torch.randn(batch, 3, 32, 32)
        (onnx_logits,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(onnx_logits, model(x).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # deprecated by torch, still offered
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("changes", [{"activation": name} for name in sorted(set(ACTIVATIONS) - {"relu"})])
# relu: the trained net above
def test_export_of_each_net_option_matches_pytorch(changes, fmt, tmp_path):
    import onnxruntime as ort

    block = dict(conv_type=["standard", "depthwise", "depthwise"], out_channels=[8, 16, 16], kernel_size=[3, 3, 3],
                 stride=[2, 1, 1], padding=[1, 1, 1], dilation=[1, 1, 1], residual=[2, 3])
    model = create_model({"blocks": [block]} | changes).eval()
    path = str(export_model(model, tmp_path / f"m.{fmt}", fmt))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        if fmt == "onnx":
            exported = ort.InferenceSession(path).run(None, {"image": x.numpy()})[0]
        else:
            exported = torch.jit.load(path)(x).numpy()
        np.testing.assert_allclose(exported, model(x).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # deprecated by torch, still offered
def test_torchscript_export_matches_pytorch(checkpoint, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "torchscript",
                 "--output", str(tmp_path / "m.pt")]) == 0
    model, record = net_and_record(checkpoint)
    extra = {"record.json": ""}
    scripted = torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    assert json.loads(extra["record.json"])["classes"] == list(record.classes)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-5, atol=1e-5)


def test_onnx_export_with_test_time_views_matches_pytorch(checkpoint, tmp_path, capsys):
    import onnxruntime as ort

    from advconv.trained.views import TestTimeViews

    model, record = net_and_record(checkpoint)
    assert record.tta_flip  # the tiny run evaluates with flip views, as the shipped configs do
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "plain.onnx")]) == 0
    assert "--tta bakes the views into the graph" in capsys.readouterr().out
    assert main(["export", "--checkpoint", str(checkpoint), "--tta", "--output", str(tmp_path / "tta.onnx")]) == 0
    x = torch.randn(5, 3, 32, 32)
    for name, expected in (("plain", model), ("tta", TestTimeViews(model, flip=True, shift=0))):
        (logits,) = ort.InferenceSession(str(tmp_path / f"{name}.onnx")).run(None, {"image": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(logits, expected(x).numpy(), rtol=1e-4, atol=1e-4)


def test_onnx_carries_the_record_and_int8_runs_without_torch(checkpoint, tmp_path, capsys):
    import json

    import onnx
    import onnxruntime as ort

    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(checkpoint), "--tta", "--int8", "--calibration", "48",
                 "--output", str(out)]) == 0
    assert "int8, calibrated on 48 training images" in capsys.readouterr().out
    model, record = net_and_record(checkpoint)
    for path in (out, out.with_suffix(".int8.onnx")):
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert json.loads(meta["classes"]) == list(record.classes)
        assert json.loads(meta["mean"]) == list(record.mean) and meta["input_size"] == "32"
        assert json.loads(meta["test_time_views"]) == {"flip": True, "shift": 0, "baked_in": True}
    int8 = onnx.load(str(out.with_suffix(".int8.onnx")))
    assert any(node.op_type == "QuantizeLinear" for node in int8.graph.node)
    x = torch.randn(8, 3, 32, 32)
    (fp32_logits,) = ort.InferenceSession(str(out)).run(None, {"image": x.numpy()})
    (int8_logits,) = ort.InferenceSession(str(out.with_suffix(".int8.onnx"))).run(None, {"image": x.numpy()})
    assert int8_logits.shape == fp32_logits.shape and np.abs(int8_logits - fp32_logits).mean() < 0.5


def test_int8_needs_onnx(checkpoint, capsys):
    assert main(["export", "--model", str(checkpoint), "--format", "torchscript", "--int8"]) == 2
    assert "int8 quantizes an ONNX file" in capsys.readouterr().err
