"""Scoring a trained model: on the validation split its run held out, and on data found on this machine."""

import numpy as np
import pytest

from advconv.cli import main
from advconv.data.datasets import hold_out, load_dataset
from advconv.data.loaders import BatchLoader
from advconv.trained.evaluation import held_out_for
from advconv.trained.hub import load_model
from advconv.trained.scoring import evaluate
from advconv.training.train import fit


def test_a_run_with_a_validation_split_is_scored_on_the_images_it_held_out(tmp_path, make_config):
    cfg = make_config(epochs=1, val_split=40)
    fit(cfg, progress=False)
    held = held_out_for(load_model(tmp_path / "run" / "last.pt"))
    train, _ = load_dataset(cfg.data.path, cfg.data.cache_dir)
    expected = hold_out(train, 40)[1]
    assert np.array_equal(held.images, expected.images) and np.array_equal(held.labels, expected.labels)
    fit(make_config(epochs=1, run_dir=str(tmp_path / "plain")), progress=False)
    with pytest.raises(ValueError, match="trained without data.val_split"):
        held_out_for(load_model(tmp_path / "plain" / "last.pt"))


def test_evaluate_scores_a_run_on_its_validation_split(tmp_path, make_config, capsys):
    fit(make_config(epochs=1, val_split=40), progress=False)
    run = tmp_path / "run" / "last.pt"
    capsys.readouterr()  # the training's own lines
    assert main(["evaluate", "--model", str(run), "--split", "val", "--no-tta-flip"]) == 0
    trained = load_model(run)
    loader = BatchLoader(held_out_for(trained), trained.record.stats, 500, train=False, channels_last=False)
    expected = evaluate(trained.net, loader).line("Validation")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == expected and "/40 " in expected
    assert printed[1].startswith("expected calibration error (15 bins):")
    fit(make_config(epochs=1, run_dir=str(tmp_path / "plain")), progress=False)
    assert main(["evaluate", "--model", str(tmp_path / "plain"), "--split", "val"]) == 2
    assert "trained without data.val_split" in capsys.readouterr().err


def test_a_copied_run_asks_for_its_data_and_caches_on_this_machine(tmp_path, image_folder, capsys, monkeypatch):
    import shutil

    from .conftest import make_image_folder, tiny_config

    data = make_image_folder(tmp_path / "moved_data", 8, 4)
    fit(tiny_config(tmp_path, data, epochs=1), progress=False)
    copy = shutil.copytree(tmp_path / "run", tmp_path / "elsewhere" / "run")
    shutil.rmtree(data)  # the data stayed on the training machine
    for command in (["evaluate", "--model", str(copy)], ["plot", str(copy)],
                    ["export", "--model", str(copy), "--int8", "--output", str(tmp_path / "m.onnx")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"the data this model was trained on, {data}, is not on this machine" in err
        assert "give the data with --data PATH" in err
    assert not (tmp_path / "m.onnx").exists() and not (copy / "curves.png").exists()  # nothing written
    monkeypatch.delenv("ADVCONV_CACHE", raising=False)
    mine = tmp_path / "my_cache"
    assert main(["evaluate", "--model", str(copy), "--data", str(image_folder), "--cache_dir", str(mine)]) == 0
    assert list(mine.glob("*.npz"))  # the cache went where this user said, not where the run's config said


def test_a_validation_split_runs_figures_show_its_held_out_images(tmp_path, make_config):
    from advconv.errors import ConfigError
    from advconv.trained.evaluation import evaluate_checkpoint
    from advconv.trained.explain import explain_images
    from advconv.trained.report import plot_run

    fit(make_config(epochs=1, val_split=40), progress=False)
    run = tmp_path / "run"
    assert evaluate_checkpoint(run, split=None).split == "val"
    assert explain_images(run, indices=[39]).split == "val"
    with pytest.raises(ConfigError, match=r"val image indices must lie in 0..39"):
        explain_images(run, indices=[40])
    assert explain_images(run, indices=[23], split="test").split == "test"  # asked for
    assert [p.name for p in plot_run(run)][-2:] == ["per_class.png", "reliability.png"]


def test_a_runs_weights_record_their_data_and_a_matching_test_set_is_named(tmp_path, make_config, image_folder,
                                                                        capsys, monkeypatch):
    import json

    from .conftest import make_image_folder

    fit(make_config(epochs=1), progress=False)
    recorded = json.loads((tmp_path / "run" / "model.json").read_text())["provenance"]["data"]
    assert recorded["name"] == image_folder.name and recorded["images"] == {"train": 72, "test": 24}
    assert recorded["test_digest"].startswith("sha256:") and "/" not in recorded["name"]
    capsys.readouterr()
    monkeypatch.setattr("advconv.errors._told", set())  # said once a process: another test may have said it
    assert main(["evaluate", "--model", str(tmp_path / "run" / "model.safetensors"), "--data", str(image_folder)]) == 0
    assert "these are the test images this model was scored on (tiny): its recorded figures should reproduce" \
        in capsys.readouterr().err
    other = make_image_folder(tmp_path / "other", 8, 8, seed=5)
    assert main(["evaluate", "--model", str(tmp_path / "run" / "model.safetensors"), "--data", str(other)]) == 0
    assert "should reproduce" not in capsys.readouterr().err


@pytest.mark.parametrize("tag", __import__("advconv.trained.hub").trained.hub.shipped_tags())
def test_shipped_weights_say_which_data_they_will_score_without_data(tag, capsys, monkeypatch):
    from advconv.trained.evaluation import data_of

    monkeypatch.setattr("advconv.errors._told", set())  # each case may say it anew

    trained = load_model(tag)
    assert trained.provenance["data"]["name"] == "cifar10-jpeg.tar.gz"
    assert trained.provenance["data"]["images"] == {"train": 50_000, "test": 10_000}
    assert data_of(trained, None) is None  # torchvision's CIFAR-10: the original binaries
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no --data given: using torchvision's CIFAR-10" in err
    assert "measured on cifar10-jpeg.tar.gz" in err


@pytest.mark.slow
def test_the_shipped_weights_test_split_digest_is_the_tarballs(shared_tarball):
    from advconv.data.datasets import load_labelled, split_digest

    for tag in __import__("advconv.trained.hub").trained.hub.shipped_tags():
        trained = load_model(tag)
        test = load_labelled(shared_tarball, trained.record.classes)
        assert split_digest(test) == trained.provenance["data"]["test_digest"], tag


def test_the_api_takes_a_cache_folder(tmp_path, image_folder, make_config, monkeypatch):
    import advconv

    fit(make_config(epochs=1), progress=False)
    monkeypatch.delenv("ADVCONV_CACHE", raising=False)
    mine = tmp_path / "api_cache"
    advconv.evaluate(tmp_path / "run", data=str(image_folder), cache_dir=mine)
    assert list(mine.glob("*.npz"))
