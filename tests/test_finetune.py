"""finetune: a run that starts from trained weights loads every tensor that fits, starts the
classifier fresh where the class count differs, refuses another net by name, and records where
it started."""

import json
from pathlib import Path

import pytest
import torch

import advconv
from advconv.cli import main
from advconv.errors import ConfigError
from advconv.trained.checkpoint import load_checkpoint
from advconv.trained.hub import create_model, load_matching, load_model
from advconv.training.finetune import without_head
from advconv.training.train import fit

SHIPPED = "stem8.default"  # 10 classes; the tiny data set has 3


def test_the_same_class_count_loads_every_tensor(checkpoint, make_config, capsys):
    start = load_model(checkpoint)
    cfg = make_config(pretrained=str(checkpoint), epochs=1, lr=1e-9, momentum=0.0, weight_decay=0.0)
    fit(cfg, progress=False)
    out = capsys.readouterr().out
    total = len(start.net.state_dict())
    assert f"pretrained: loaded {total} of {total} tensors from {checkpoint}" in out
    assert "fresh" not in out
    after = load_checkpoint(cfg.run_dir).model
    weights = {k: v for k, v in start.net.state_dict().items() if "running" not in k and "num_batches" not in k}
    for name, tensor in weights.items():  # a step of lr 1e-9 leaves the loaded weights where they were
        torch.testing.assert_close(after[name], tensor, rtol=1e-4, atol=1e-6, msg=name)


def test_the_same_count_of_other_classes_starts_the_head_fresh(checkpoint, tmp_path, capsys):
    from .conftest import make_image_folder, tiny_config

    renamed = make_image_folder(tmp_path / "renamed", classes=("ant", "bee", "cow"))
    fit(tiny_config(tmp_path, renamed, pretrained=str(checkpoint), epochs=1), progress=False)
    total = len(load_model(checkpoint).net.state_dict())
    assert f"loaded {total - 1} of {total} tensors from {checkpoint}; head.weight starts fresh (other classes)" \
        in capsys.readouterr().out


def test_another_class_count_starts_the_head_fresh_and_the_rest_from_the_weights(make_config, capsys):
    cfg = make_config(pretrained=SHIPPED, epochs=1, lr=1e-9, momentum=0.0, weight_decay=0.0)
    result = fit(cfg, progress=False)
    out = capsys.readouterr().out
    shipped = load_model(SHIPPED).net.state_dict()
    assert f"pretrained: loaded {len(shipped) - 1} of {len(shipped)} tensors from {SHIPPED}; " \
           "head.weight starts fresh (other classes)" in out
    assert "model of stem8.default" in out
    after = load_checkpoint(cfg.run_dir).model
    assert after["head.weight"].shape[0] == 3
    torch.testing.assert_close(after["c1.0.0.weight"], shipped["c1.0.0.weight"], rtol=1e-4, atol=1e-6)
    assert result.model.head.weight.shape[0] == 3


def test_the_start_is_recorded_in_the_checkpoint_the_manifest_and_the_weights(make_config):
    cfg = make_config(pretrained=SHIPPED, epochs=1)
    fit(cfg, progress=False)
    run = Path(cfg.run_dir)
    assert load_checkpoint(run).config["pretrained"] == SHIPPED
    assert json.loads((run / "manifest.json").read_text())["sessions"][0]["config"]["pretrained"] == SHIPPED
    assert json.loads((run / "model.json").read_text())["provenance"]["config"]["pretrained"] == SHIPPED
    assert load_checkpoint(run).config["model"] == without_head(load_model(SHIPPED).record.spec)


def test_a_fine_tuned_run_resumes_without_its_starting_weights(make_config, capsys):
    cfg = make_config(pretrained=SHIPPED, epochs=2)
    fit(cfg, progress=False)
    capsys.readouterr()
    fit(resume_from=cfg.run_dir, progress=False)
    assert "pretrained: loaded" not in capsys.readouterr().out  # the checkpoint has the weights


def test_a_model_named_beside_the_weights_must_be_their_net(make_config):
    with pytest.raises(ConfigError, match=r"model assignment9 is not the net of the weights in pretrained "
                                          r"\(stem8.default\): block c1 has conv_type"):
        fit(make_config(pretrained=SHIPPED, model="assignment9"), progress=False)
    with pytest.raises(ConfigError, match="activation 'gelu' against 'relu'"):
        fit(make_config(pretrained=SHIPPED, model={"base": "stem8", "activation": "gelu"}), progress=False)


def test_weights_of_another_net_are_refused_naming_the_tensor():
    net = create_model("assignment9")
    with pytest.raises(ConfigError, match=r"c1.0.0.weight has shape \(16, 3, 3, 3\), this net.s \(32, 3, 3, 3\)"):
        load_matching(net, load_model(SHIPPED).net.state_dict())


@pytest.mark.parametrize("source, words", [
    ("no/such/run", "pretrained: no trained model at no/such/run"),
    ("notes.txt", "notes.txt is unreadable (truncated or corrupt?)"),
])
def test_a_start_that_is_not_a_trained_model_is_one_line_and_writes_nothing(tmp_path, make_config, monkeypatch,
                                                                         capsys, source, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not weights")
    cfg = make_config(pretrained=source)
    assert main(["train", "--config", _yaml(tmp_path, cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_weights_trained_at_another_image_size_are_refused(make_config, tmp_path):
    with pytest.raises(ConfigError, match="trained on 32-pixel images and this run's data.image_size is 24: "
                                          "set --image_size 32"):
        fit(make_config(pretrained=SHIPPED, image_size=24), progress=False)
    assert not (tmp_path / "run").exists()


def test_whitening_and_starting_weights_exclude_each_other(make_config):
    with pytest.raises(ConfigError, match="optim.whiten .* pretrained .*choose one"):
        fit(make_config(pretrained=SHIPPED, whiten=True), progress=False)


def test_create_model_pretrained_with_another_class_count():
    shipped = load_model(SHIPPED).net.state_dict()
    net = advconv.create_model("stem8", pretrained=True, num_classes=5)
    assert net.head.weight.shape == (5, shipped["head.weight"].shape[1], 1, 1)
    torch.testing.assert_close(net.state_dict()["c2.0.0.weight"], shipped["c2.0.0.weight"])
    same = advconv.create_model("stem8", pretrained=True, num_classes=10)
    torch.testing.assert_close(same.head.weight, shipped["head.weight"])
    assert advconv.create_model("stem8", num_classes=5).head.weight.shape[0] == 5


def _yaml(folder, cfg):
    import yaml

    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return str(path)
