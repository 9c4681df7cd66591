"""From a run to figures and numbers: plot, evaluate, unreadable checkpoints."""

import re

import numpy as np

from advconv.cli import main
from advconv.report import plot_run
from advconv.train import fit


def test_plot_and_evaluate_from_a_run(tmp_path, make_config, capsys):
    fit(make_config(epochs=1), progress=False)
    written = plot_run(tmp_path / "run")
    assert [p.name for p in written] == ["curves.png", "augmented.png", "misclassified.png", "confusion.png",
                                         "per_class.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt")]) == 0
    assert re.search(r"Test set: Average loss: .*Accuracy: \d+/24", capsys.readouterr().out)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(bad)]) == 2
    assert f"checkpoint {bad} is unreadable" in capsys.readouterr().err


def test_augmented_samples_show_the_runs_pipeline(image_folder, tmp_path):
    from advconv.config import load_config
    from advconv.data import load_dataset
    from advconv.report import augmented_samples

    train, _ = load_dataset(image_folder, tmp_path / "cache")
    for pipeline in ("batched", "albumentations"):
        plain = load_config(None, {"pipeline": pipeline, "hflip": 0.0, "cutout": 0.0, "translate": 0,
                                   "affine": 0.0})
        images, labels = augmented_samples(plain, train, count=8)
        assert images.shape == (8, 32, 32, 3) and images.dtype == np.uint8
        index = {tuple(img.ravel()[:64]): i for i, img in enumerate(train.images)}
        for img, label in zip(images, labels):  # no augmentation: the very images, labels kept
            i = index[tuple(img.ravel()[:64])]
            assert np.abs(img.astype(int) - train.images[i]).max() <= 1 and train.labels[i] == label
        holes = load_config(None, {"pipeline": pipeline, "cutout": 1.0, "cutout_size": 8})
        assert not np.array_equal(augmented_samples(holes, train, count=8)[0], images)
    mixed = load_config(None, {"pipeline": "batched", "mixup": 1.0})
    assert augmented_samples(mixed, train, count=8)[1].shape == (8,)  # a label each, as the grid shows them


def test_a_run_with_a_validation_split_is_scored_on_the_images_it_held_out(tmp_path, make_config):
    import pytest

    from advconv.hub import load_model
    from advconv.data import hold_out, load_dataset
    from advconv.report import held_out_for

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
    from advconv.hub import load_model
    from advconv.loaders import BatchLoader
    from advconv.loops import evaluate
    from advconv.report import held_out_for

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
