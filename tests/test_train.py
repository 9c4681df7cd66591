import re

import numpy as np
import pytest
import torch

from advconv import train as train_mod
from advconv.cli import main
from advconv.config import load_config
from advconv.data import ArrayDataset, BatchLoader, DataError, load_cifar10
from advconv.report import plot_run
from advconv.train import fit, load_checkpoint

from .conftest import make_image_folder


def tiny_config(tmp_path, data, **overrides):
    base = {"data.path": str(data), "cache_dir": str(tmp_path / "cache"), "run_dir": str(tmp_path / "run"),
            "epochs": 3, "batch_size": 16, "workers": 0, "lr": 0.05, "warmup": 0.3}
    return load_config(None, base | overrides)


@pytest.mark.parametrize("pipeline", ["batched", "albumentations"])
def test_fit_learns_tiny_dataset_and_writes_run(tmp_path, image_folder, pipeline):
    result = fit(tiny_config(tmp_path, image_folder, pipeline=pipeline, epochs=4), progress=False)
    history = result["history"]
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    run = tmp_path / "run"
    for name in ("last.pt", "best.pt", "metrics.csv", "metrics.json"):
        assert (run / name).exists(), name
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,train_loss,train_acc")
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 4 and state["classes"] == ("circle", "cross", "stripes")


@pytest.mark.parametrize("pipeline", ["batched", "albumentations"])
def test_resume_equals_uninterrupted_run(tmp_path, image_folder, pipeline, monkeypatch):
    settings = dict(pipeline=pipeline, precision="fp32", deterministic=True, epochs=3)
    straight = fit(tiny_config(tmp_path / "a", image_folder, **settings), progress=False)

    real_epoch, calls = train_mod.train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # dies in the middle of the 2nd epoch
        return real_epoch(*args, **kwargs)

    cfg = tiny_config(tmp_path / "b", image_folder, **settings)
    monkeypatch.setattr(train_mod, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, progress=False)
    monkeypatch.setattr(train_mod, "train_epoch", real_epoch)
    assert load_checkpoint(tmp_path / "b" / "run")["epoch"] == 1
    resumed = fit(cfg, resume=True, progress=False)

    for (name, a), b in zip(straight["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b), name
    assert [h["test_acc"] for h in straight["history"]] == [h["test_acc"] for h in resumed["history"]]


def test_progress_and_test_lines_have_the_course_format(tmp_path, image_folder, capsys):
    fit(tiny_config(tmp_path, image_folder, epochs=1, pipeline="batched"), progress=True)
    captured = capsys.readouterr()
    assert re.search(r"Train: Loss=\d+\.\d\d Batch_id=\d+ Accuracy=\d+\.\d\d", captured.err)
    assert re.search(r"Test set: Average loss: \d+\.\d{4}, Accuracy: \d+/24 \(\d+\.\d\d%\)", captured.out)


def test_missing_data_says_how_to_pass_it(tmp_path, capsys):
    with pytest.raises(DataError, match="--data"):
        load_cifar10(tmp_path / "nowhere")
    code = main(["train", "--data", str(tmp_path / "nowhere"), "--cache_dir", str(tmp_path)])
    assert code == 2
    assert "dataset not found" in capsys.readouterr().err


def test_corrupt_image_is_named_or_skipped(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class_train=3, per_class_test=2)
    bad = root / "train" / "cross" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        load_cifar10(root, tmp_path / "cache")
    with pytest.warns(UserWarning, match="broken.jpg"):
        train, test = load_cifar10(root, tmp_path / "cache", skip_corrupt=True)
    assert len(train) == 9 and len(test) == 6


def test_tarball_and_cache(tmp_path, monkeypatch):
    import tarfile

    root = make_image_folder(tmp_path / "d", per_class_train=4, per_class_test=2)
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="tiny")
    train, test = load_cifar10(archive, tmp_path / "cache")
    assert train.images.shape == (12, 32, 32, 3) and test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    # the second load comes from the .npz cache: no image is decoded again
    monkeypatch.setattr("advconv.data.decode_image", lambda *a, **k: pytest.fail("decoded twice"))
    again, _ = load_cifar10(archive, tmp_path / "cache")
    assert np.array_equal(again.images, train.images)


def test_batch_loader_is_a_pure_function_of_seed_and_epoch():
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 10, tuple("abcdefghij"))
    make = lambda: BatchLoader(data, (0.5,) * 3, (0.25,) * 3, 16, train=True, seed=3)  # noqa: E731
    a, b = make(), make()
    a.set_epoch(2), b.set_epoch(2)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert len(a) == 2  # drop_last for training
    b.set_epoch(3)
    assert not torch.equal(next(iter(a))[0], next(iter(b))[0])


def test_batch_loader_without_augmentation_only_normalizes():
    images = np.full((4, 32, 32, 3), 128, dtype=np.uint8)
    data = ArrayDataset(images, np.zeros(4, dtype=np.int64), ("a",))
    loader = BatchLoader(data, (0.5,) * 3, (0.25,) * 3, 4, train=True, translate=0, hflip=0, cutout=0)
    x, _ = next(iter(loader))
    assert torch.allclose(x, torch.full_like(x, (128 / 255 - 0.5) / 0.25), atol=1e-5)


def test_batch_loader_cutout_is_a_16x16_mean_filled_square():
    data = ArrayDataset(np.full((8, 32, 32, 3), 200, dtype=np.uint8), np.zeros(8, dtype=np.int64), ("a",))
    loader = BatchLoader(data, (0.5,) * 3, (0.25,) * 3, 8, train=True, translate=0, hflip=0, cutout=1.0)
    x, _ = next(iter(loader))
    holes = (x == 0).all(1)  # filled with the mean == 0 after normalizing
    assert holes.any(dim=(1, 2)).all()
    assert (holes.sum(dim=(1, 2)) <= 256).all()
    assert (holes.sum(dim=(1, 2)).max() == 256)  # some hole lies fully inside the image


def test_plot_and_evaluate_from_a_run(tmp_path, image_folder, capsys):
    fit(tiny_config(tmp_path, image_folder, epochs=1, pipeline="batched"), progress=False)
    written = plot_run(tmp_path / "run")
    assert [p.name for p in written] == ["curves.png", "misclassified.png", "confusion.png", "per_class.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt")]) == 0
    assert re.search(r"Test set: Average loss: .*Accuracy: \d+/24", capsys.readouterr().out)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(bad)]) == 2
    assert f"checkpoint {bad} is unreadable" in capsys.readouterr().err


@pytest.mark.slow
def test_shared_cifar10_tarball_loads(shared_tarball, tmp_path):
    train, test = load_cifar10(shared_tarball, tmp_path / "cache")
    assert train.images.shape == (50_000, 32, 32, 3) and test.images.shape == (10_000, 32, 32, 3)
    assert train.classes == ("airplane", "automobile", "bird", "cat", "deer",
                             "dog", "frog", "horse", "ship", "truck")
    assert np.bincount(test.labels).tolist() == [1000] * 10


def test_channel_stats_match_numpy():
    from advconv.data import channel_stats

    images = np.random.default_rng(0).integers(0, 255, (50, 32, 32, 3), dtype=np.uint8)
    mean, std = channel_stats(images)
    x = images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(mean, x.mean(0), atol=1e-4)
    np.testing.assert_allclose(std, x.std(0), atol=1e-4)


def test_alternating_flip_mirrors_each_image_every_other_epoch():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (32, 32, 32, 3), dtype=np.uint8)
    data = ArrayDataset(images, np.arange(32), tuple(str(i) for i in range(32)))
    loader = BatchLoader(data, (0.5,) * 3, (0.25,) * 3, 32, train=True, translate=0, cutout=0, alternate_flip=True)
    views = []
    for epoch in (0, 1, 2):
        loader.set_epoch(epoch)
        x, y = next(iter(loader))
        views.append(x[y.argsort()])
    flipped_0 = (views[0] != views[1]).flatten(1).any(1)
    assert torch.equal(views[0], views[2])  # same view every two epochs
    assert flipped_0.all()  # and the other view in between
    expected = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    plain = ((views[0] - expected).abs() < 1e-4).flatten(1).all(1)
    assert 5 < int(plain.sum()) < 27  # a random half starts unmirrored


def test_auto_precision_falls_back_to_fp32_without_cpu_bf16(monkeypatch):
    from advconv.train import autocast_dtype

    cpu = torch.device("cpu")
    monkeypatch.setattr(train_mod, "cpu_supports_bf16", lambda: False)
    assert autocast_dtype("auto", cpu) is None
    monkeypatch.setattr(train_mod, "cpu_supports_bf16", lambda: True)
    assert autocast_dtype("auto", cpu) is torch.bfloat16
    assert autocast_dtype("fp32", cpu) is None


def test_fast_recipe_runs_in_fp32(tmp_path, image_folder):
    """The fast config's path (batched, alternating flips, channels_last, TTA) on a CPU without bf16."""
    from pathlib import Path

    fast = Path(__file__).resolve().parents[1] / "configs" / "fast.yaml"
    cfg = load_config(fast, {"data.path": str(image_folder), "cache_dir": str(tmp_path / "cache"),
                             "run_dir": str(tmp_path / "run"), "epochs": 3, "batch_size": 16,
                             "precision": "fp32", "lr": 0.05})
    history = fit(cfg, progress=False)["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_ema_weights_are_saved_and_deployed(tmp_path, image_folder):
    from advconv.train import model_from_checkpoint

    fit(tiny_config(tmp_path, image_folder, epochs=2, pipeline="batched", ema=0.9), progress=False)
    state = load_checkpoint(tmp_path / "run")
    assert state["ema"] is not None and state["ema_full"] is not None
    differs = [not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"]
               if state["model"][k].is_floating_point()]
    assert any(differs)
    model, _ = model_from_checkpoint(state)  # evaluation and export use the averaged weights
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["ema"][k])


def test_tta_views_are_mirror_and_shifted_copies():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    assert [v.shape for v in train_mod.tta_views(x, flip=False)] == [x.shape]
    views = train_mod.tta_views(x, flip=True, shift=2)
    assert len(views) == 6 and all(v.shape == x.shape for v in views)
    assert torch.equal(views[1], x.flip(3))
    down_right, up_left = views[2], views[3]  # shifted copies of x itself
    assert torch.equal(down_right[..., 2:, 2:], x[..., :-2, :-2])
    assert torch.equal(up_left[..., :-2, :-2], x[..., 2:, 2:])
    assert torch.equal(views[4][..., 2:, 2:], x.flip(3)[..., :-2, :-2])
    with pytest.raises(ValueError, match="tta_shift must be in"):
        train_mod.tta_views(x, flip=True, shift=8)


def test_evaluate_averages_logits_over_views():
    class HalfSums(torch.nn.Module):  # logits depend on where the bright pixel is
        def forward(self, x):
            assert not torch.is_grad_enabled()
            return torch.stack([x[:, 0, :, :4].sum((1, 2)), x[:, 0, :, 4:].sum((1, 2))], 1)

    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, 0, 0] = 1.0  # left half: class 0 without TTA, a tie with the mirror
    y = torch.tensor([0])
    plain = train_mod.evaluate(HalfSums(), [(x, y)], torch.device("cpu"), None)
    mirrored = train_mod.evaluate(HalfSums(), [(x, y)], torch.device("cpu"), None, tta=True)
    assert plain.correct == 1
    assert abs(mirrored.loss - float(torch.nn.functional.cross_entropy(torch.tensor([[0.5, 0.5]]), y))) < 1e-6
