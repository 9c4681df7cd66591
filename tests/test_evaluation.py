"""Scoring a trained model: on the validation split its run held out, and on data found on this machine."""

import numpy as np
import pytest

from advconv.cli import main
from advconv.data import hold_out, load_dataset
from advconv.evaluation import held_out_for
from advconv.hub import load_model
from advconv.loaders import BatchLoader
from advconv.loops import evaluate
from advconv.train import fit


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
    assert main(["evaluate", "--model", str(run), "--split", "val", "--no-tta"]) == 0
    trained = load_model(run)
    loader = BatchLoader(held_out_for(trained), trained.record.stats, 500, train=False, channels_last=False)
    expected = evaluate(trained.net, loader).line("Validation")
    assert capsys.readouterr().out.strip() == expected and "/40 " in expected
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
