"""The Python API exported from ``advconv``: each call, as the README shows it."""

import numpy as np
import pytest
import torch
from PIL import Image

import advconv
from advconv.trained.hub import TrainedModel


@pytest.fixture(scope="module")
def trained(tmp_path_factory, image_folder):
    tmp = tmp_path_factory.mktemp("api")
    result = advconv.fit(data=str(image_folder), cache_dir=str(tmp / "cache"), run_dir=str(tmp / "run"),
                         epochs=2, batch_size=16, pipeline="batched", lr=1e-2, progress=False)
    return result, tmp / "run"


def test_fit_takes_overrides_by_name_and_returns_a_typed_result(trained):
    result, run_dir = trained
    assert isinstance(result, advconv.api.TrainResult) and len(result.history) == 2
    assert result.run_dir == run_dir and (run_dir / "model.safetensors").exists()


def test_fit_takes_a_config_object_and_leaves_it_alone(tmp_path, image_folder):
    cfg = advconv.load_config(None, {"data.path": str(image_folder), "cache_dir": str(tmp_path / "c"),
                                     "run_dir": str(tmp_path / "r"), "pipeline": "batched", "batch_size": 16})
    epochs = cfg.epochs
    result = advconv.fit(cfg, epochs=1, progress=False)
    assert len(result.history) == 1 and epochs != 1 and cfg.epochs == epochs  # the overrides went to a copy


@pytest.mark.parametrize("source", ["run_dir", "model.safetensors", "last.pt"])
def test_load_model_from_a_run(trained, source):
    _, run_dir = trained
    model = advconv.load_model(run_dir if source == "run_dir" else run_dir / source)
    assert isinstance(model, TrainedModel) and not model.net.training
    assert model.record.classes == ("circle", "cross", "stripes") and model.record.input_size == 32


def test_predict_takes_paths_pil_arrays_and_tensors(trained, image_folder):
    _, run_dir = trained
    model = advconv.load_model(run_dir)
    path = next((image_folder / "test" / "cross").iterdir())
    pil = Image.open(path)
    array = np.array(pil)
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    predictions = advconv.predict(model, [path, pil, array, tensor, tensor.float() / 255], top_k=2)
    assert [p.path for p in predictions] == [str(path), "image 1", "image 2", "image 3", "image 4"]
    tops = [p.top for p in predictions]
    for top in tops[1:]:
        assert [c for c, _ in top] == [c for c, _ in tops[0]]
        assert [v for _, v in top] == pytest.approx([v for _, v in tops[0]], abs=1e-4)
    batch = advconv.predict(run_dir, np.stack([array, array]))  # a path to the model works too
    assert len(batch) == 2
    grey = advconv.predict(model, [array[..., :1], torch.from_numpy(array[..., :1]).permute(2, 0, 1)])
    assert grey[0].top == grey[1].top  # one channel, as array or tensor
    with pytest.raises(ValueError, match=r"image 0: expected \(H, W, 3\) pixels"):
        advconv.predict(model, np.zeros((4, 4)))


def test_summary_and_check():
    s = advconv.summary("assignment9")
    assert s.total_params == 186_752 and "Final receptive field" in str(s)
    assert advconv.check("assignment9").passed
    assert not advconv.check(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2))).passed
    gelu = {"base": "stem8", "activation": "gelu"}  # a model mapping, as configs write one
    assert advconv.check(gelu).passed
    assert any(isinstance(m, torch.nn.GELU) for m in advconv.api.resolve_model(gelu).modules())
