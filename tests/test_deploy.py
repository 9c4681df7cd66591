import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from advconv.blocks import ACTIVATIONS
from advconv.cli import main
from advconv.data import ChannelStats
from advconv.export import export_model
from advconv.inference import predict_files, preprocess
from advconv.checkpoint import load_checkpoint
from advconv.hub import create_model, load_model
from advconv.train import fit

from .conftest import tiny_config


def _net_and_record(path):
    trained = load_model(path)
    return trained.net, trained.record


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, image_folder):
    tmp = tmp_path_factory.mktemp("trained")
    fit(tiny_config(tmp, image_folder, epochs=2), progress=False)
    return tmp / "run" / "best.pt"


def test_predict_any_size_and_format(checkpoint, tmp_path, capsys):
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)).save(big)
    gray = tmp_path / "gray.bmp"
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(gray)
    predictions = predict_files(checkpoint, [big, gray], top_k=2)
    assert [len(p.top) for p in predictions] == [2, 2]
    assert all(p.top[0][1] >= p.top[1][1] for p in predictions)
    assert main(["predict", "--checkpoint", str(checkpoint), str(big)]) == 0
    assert f"{big}: " in capsys.readouterr().out


def test_predict_unreadable_file(checkpoint, tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert main(["predict", "--checkpoint", str(checkpoint), str(bad)]) == 2
    assert f"cannot decode image {bad}" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "missing.png")]) == 2


def test_onnx_export_matches_pytorch(checkpoint, tmp_path):
    import onnxruntime as ort

    model, _ = _net_and_record(checkpoint)
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
    model, record = _net_and_record(checkpoint)
    extra = {"record.json": ""}
    scripted = torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    assert json.loads(extra["record.json"])["classes"] == list(record.classes)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-5, atol=1e-5)


def test_gradcam_grid(checkpoint, tmp_path):
    out = tmp_path / "cam.png"
    assert main(["explain", "--checkpoint", str(checkpoint), "--index", "0", "5", "--output", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_gradcam_overlays_have_image_shape(checkpoint):
    from advconv.explain import gradcam_overlays

    model, record = _net_and_record(checkpoint)
    images = np.random.default_rng(1).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    overlays = gradcam_overlays(model, images, [0, 1, 2], record.stats)
    assert overlays.shape == (3, 32, 32, 3) and overlays.dtype == np.uint8


def test_preprocess_matches_training_normalization():
    x = preprocess(np.full((1, 2, 2, 3), 255, dtype=np.uint8), ChannelStats((0.5, 0.5, 0.5), (0.5, 0.25, 0.5)))
    assert x.shape == (1, 3, 2, 2) and x[0, 1, 0, 0].item() == pytest.approx(2.0)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_end_with_identical_weights(tmp_path, image_folder):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "tests/ddp_worker.py", str(image_folder), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    a = torch.load(tmp_path / "rank0.pt")
    b = torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # only rank 0 writes: one run directory with its checkpoint, no per-rank files
    assert (tmp_path / "run" / "last.pt").exists()
    assert len(load_checkpoint(tmp_path / "run").history) == 2


@pytest.mark.slow
@pytest.mark.parametrize("fault, message", [
    ("nan_on_rank1", "training stopped in epoch 2: loss became nan"),
    ("checkpoint_error", "cannot write checkpoint"),
])
def test_a_fault_on_one_rank_stops_every_rank_with_its_message(tmp_path, image_folder, fault, message):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "tests/ddp_worker.py", str(image_folder), str(tmp_path), fault]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    messages = [(tmp_path / f"rank{rank}.stopped").read_text() for rank in (0, 1)]  # both ranks stopped
    assert messages[0] == messages[1] and message in messages[0], done.stdout + done.stderr


def test_onnx_export_with_test_time_views_matches_pytorch(checkpoint, tmp_path, capsys):
    import onnxruntime as ort

    from advconv.views import TestTimeViews

    model, record = _net_and_record(checkpoint)
    assert record.tta  # the tiny run evaluates with flip views, as the shipped configs do
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "plain.onnx")]) == 0
    assert "--tta bakes the views into the graph" in capsys.readouterr().out
    assert main(["export", "--checkpoint", str(checkpoint), "--tta", "--output", str(tmp_path / "tta.onnx")]) == 0
    x = torch.randn(5, 3, 32, 32)
    for name, expected in (("plain", model), ("tta", TestTimeViews(model, flip=True, shift=0))):
        (logits,) = ort.InferenceSession(str(tmp_path / f"{name}.onnx")).run(None, {"image": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(logits, expected(x).numpy(), rtol=1e-4, atol=1e-4)


def test_predict_applies_the_runs_test_time_views(checkpoint, tmp_path):
    from advconv.inference import with_views

    path = tmp_path / "img.png"
    image = np.random.default_rng(2).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    model, record = _net_and_record(checkpoint)
    x = preprocess(image[None], record.stats)
    with torch.no_grad():
        viewed = with_views(model, record)(x).softmax(1)[0]
        plain = model(x).softmax(1)[0]
    assert not torch.allclose(viewed, plain)
    for tta, expected in ((None, viewed), (False, plain)):
        (prediction,) = predict_files(checkpoint, [path], top_k=1, tta=tta)
        cls, p = prediction.top[0]
        assert cls == record.classes[int(expected.argmax())] and p == pytest.approx(float(expected.max()), abs=1e-5)


def test_onnx_carries_the_record_and_int8_runs_without_torch(checkpoint, tmp_path, capsys):
    import json

    import onnx
    import onnxruntime as ort

    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(checkpoint), "--tta", "--int8", "--calibration", "48",
                 "--output", str(out)]) == 0
    assert "int8, calibrated on 48 training images" in capsys.readouterr().out
    model, record = _net_and_record(checkpoint)
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
