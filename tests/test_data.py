"""Datasets: image folders and tarballs, the decoded cache, channel statistics."""

import tarfile

import numpy as np
import pytest

from advconv.cli import main
from advconv.data.datasets import DataError, channel_stats, load_dataset

from .conftest import make_image_folder


def test_missing_data_says_how_to_pass_it(tmp_path, capsys):
    with pytest.raises(DataError, match="--data"):
        load_dataset(tmp_path / "nowhere")
    code = main(["train", "--data", str(tmp_path / "nowhere"), "--cache_dir", str(tmp_path),
                 "--run_dir", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert "dataset not found" in err and err.count("\n") == 1  # one line


def test_corrupt_image_is_named_or_skipped(tmp_path, capsys):
    root = make_image_folder(tmp_path / "d", per_class_train=3, per_class_test=2)
    bad = root / "train" / "cross" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        load_dataset(root, tmp_path / "cache")
    train, test = load_dataset(root, tmp_path / "cache", skip_corrupt=True)
    assert len(train) == 9 and len(test) == 6
    err = capsys.readouterr().err
    assert err.startswith("warning: skipping cannot decode image") and "broken.jpg" in err and err.count("\n") == 1


@pytest.mark.parametrize("content", [None, "readme.txt"])
@pytest.mark.parametrize("packed", [False, True])
def test_an_empty_class_folder_is_an_error_not_a_class_dropped(tmp_path, capsys, content, packed):
    root = make_image_folder(tmp_path / "d", per_class_train=3, per_class_test=2)
    (root / "train" / "hexagon").mkdir()
    if content:
        (root / "train" / "hexagon" / content).write_text("not an image")
    source = root
    if packed:
        source = tmp_path / "d.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(root, arcname="d")
    with pytest.raises(DataError, match=r"class folder\(s\) hexagon of .* train/ hold no image file"):
        load_dataset(source, tmp_path / "cache")
    assert main(["train", "--data", str(source), "--run_dir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_fraction_holds_out_that_share_of_the_training_images():
    from advconv.data.datasets import ArrayDataset, hold_out

    data = ArrayDataset(np.zeros((50, 4, 4, 3), np.uint8), np.arange(50) % 5, tuple("abcde"))
    rest, held = hold_out(data, 0.2)
    assert (len(rest), len(held)) == (40, 10)
    assert np.array_equal(held.labels, hold_out(data, 10)[1].labels)  # the same draw as the count
    with pytest.raises(DataError, match="must leave between 1 and 49"):
        hold_out(data, 0.001)


def test_tarball_and_cache(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "d", per_class_train=4, per_class_test=2)
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="tiny")
    train, test = load_dataset(archive, tmp_path / "cache")
    assert train.images.shape == (12, 32, 32, 3) and test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    # the second load comes from the .npz cache: no image is decoded again
    monkeypatch.setattr("advconv.data.datasets.decode_image", lambda *a, **k: pytest.fail("decoded twice"))
    again, _ = load_dataset(archive, tmp_path / "cache")
    assert np.array_equal(again.images, train.images)


@pytest.mark.slow
def test_shared_cifar10_tarball_loads(shared_tarball, tmp_path):
    train, test = load_dataset(shared_tarball, tmp_path / "cache")
    assert train.images.shape == (50_000, 32, 32, 3) and test.images.shape == (10_000, 32, 32, 3)
    assert train.classes == ("airplane", "automobile", "bird", "cat", "deer",
                             "dog", "frog", "horse", "ship", "truck")
    assert np.bincount(test.labels).tolist() == [1000] * 10


def test_channel_stats_match_numpy():
    images = np.random.default_rng(0).integers(0, 255, (50, 32, 32, 3), dtype=np.uint8)
    stats = channel_stats(images)
    x = images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(stats.mean, x.mean(0), atol=1e-4)
    np.testing.assert_allclose(stats.std, x.std(0), atol=1e-4)


def test_hold_out_is_disjoint_and_fixed():
    from advconv.data.datasets import ArrayDataset, hold_out

    data = ArrayDataset(np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1).repeat(3, -1), np.arange(20) % 4,
                        tuple("abcd"))
    rest, held = hold_out(data, 5)
    again_rest, again_held = hold_out(data, 5)
    ids = lambda d: d.images[:, 0, 0, 0].tolist()  # noqa: E731
    assert len(held) == 5 and len(rest) == 15 and not set(ids(rest)) & set(ids(held))
    assert ids(held) == ids(again_held) and ids(rest) == ids(again_rest)
    for bad in (0, 20):
        with pytest.raises(DataError, match="data.val_split must leave between 1 and 19"):
            hold_out(data, bad)


def test_cache_follows_the_folder_content(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class_train=3, per_class_test=2)
    train, _ = load_dataset(root, tmp_path / "cache")
    extra = root / "train" / "cross" / "extra.png"
    (root / "train" / "cross" / "0000.png").rename(extra)  # renamed: same size, new path
    make_image_folder(tmp_path / "more", per_class_train=1, per_class_test=0, seed=5)
    (tmp_path / "more" / "train" / "circle" / "0000.png").rename(root / "train" / "circle" / "new.png")
    again, _ = load_dataset(root, tmp_path / "cache")
    assert len(again) == len(train) + 1  # the added image is seen, not the stale cache
    extra.unlink()
    assert len(load_dataset(root, tmp_path / "cache")[0]) == len(train)


def test_symlinked_class_folders_are_followed(tmp_path):
    real = make_image_folder(tmp_path / "real", per_class_train=2, per_class_test=1)
    linked = tmp_path / "linked"
    (linked / "test").mkdir(parents=True)
    (linked / "train").symlink_to(real / "train", target_is_directory=True)
    for cls in ("circle", "cross", "stripes"):
        (linked / "test" / cls).symlink_to(real / "test" / cls, target_is_directory=True)
    train, test = load_dataset(linked, tmp_path / "cache")
    assert (len(train), len(test)) == (6, 3)


def test_a_symlink_cycle_ends(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class_train=2, per_class_test=1)
    (root / "train" / "cross" / "loop").symlink_to(root / "train", target_is_directory=True)
    train, test = load_dataset(root, tmp_path / "cache")
    assert (len(train), len(test)) == (6, 3)
