"""Any labelled image folder trains, evaluates and predicts; bad data gets one line (exit 2)."""

import csv
import re
import tarfile

import numpy as np
import pytest
from PIL import Image

from advconv.cli import main
from advconv.config import SETTINGS
from advconv.trained.checkpoint import load_checkpoint
from advconv.trained.hub import load_model
from advconv.training.train import fit

from .conftest import make_image_folder, tiny_config, write_class_images

TWELVE = tuple(f"c{i:02d}" for i in range(12))


@pytest.fixture(scope="module")
def twelve(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("d12") / "ds12", 6, 2, classes=TWELVE)


def test_the_net_gets_as_many_outputs_as_the_data_has_classes(tmp_path, twelve, capsys):
    result = fit(tiny_config(tmp_path, twelve, epochs=1), progress=False)
    assert result.model.head.out_channels == 12
    assert load_checkpoint(tmp_path / "run").record.classes == TWELVE
    assert main(["train", "--data", str(twelve), "--batch_size", "16", "--epochs", "1", "--no-progress",
                 "--run_dir", str(tmp_path / "cli"), "--cache_dir", str(tmp_path / "cache")]) == 0


def test_a_fixed_num_classes_is_checked_before_decoding(tmp_path, twelve, capsys):
    spec = {"base": "assignment9", "num_classes": 10}
    with pytest.raises(ValueError, match=r"model.num_classes is 10 but the data has 12 classes \(c00, c01"):
        fit(tiny_config(tmp_path, twelve, model=spec), progress=False)
    assert not list((tmp_path / "cache").glob("*.npz"))  # refused before any image was decoded


def test_images_of_any_size_are_resized_to_the_configured_size(tmp_path, capsys):
    data = make_image_folder(tmp_path / "big", 16, 4, size=48)
    result = fit(tiny_config(tmp_path, data, epochs=1, image_size=64), progress=False)
    assert load_model(tmp_path / "run").record.input_size == 64 and result.history
    (tmp_path / "c.yaml").write_text("data:\n  image_size: 64\n")
    assert main(["summary", "--model", str(tmp_path / "c.yaml")]) == 0
    assert "Final receptive field: 69 on a 64x64 input" in capsys.readouterr().out  # the default net, stem8


@pytest.mark.parametrize("layout", ["test_only", "bare"])
def test_evaluate_takes_a_test_only_or_bare_labelled_folder(tmp_path, image_folder, layout, capsys):
    fit(tiny_config(tmp_path, image_folder, epochs=1), progress=False)
    folder = tmp_path / layout
    for k, cls in enumerate(("cross", "stripes")):  # a subset of the classes, by name
        write_class_images(folder / "test" / cls if layout == "test_only" else folder / cls, k + 1, 3, seed=9)
    assert main(["evaluate", "--model", str(tmp_path / "run"), "--data", str(folder)]) == 0
    assert re.search(r"Accuracy: \d+/6 \(", capsys.readouterr().out)  # only the 6 images given, no train/
    write_class_images(folder / ("test" if layout == "test_only" else "") / "zebra", 0, 2)
    assert main(["evaluate", "--model", str(tmp_path / "run"), "--data", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "zebra" in err and "not among the model's classes (circle, cross, stripes)" in err


def test_predict_a_folder_of_unlabelled_images_to_csv(tmp_path, image_folder, capsys):
    fit(tiny_config(tmp_path, image_folder, epochs=1), progress=False)
    photos = tmp_path / "photos"
    write_class_images(photos, 0, 3)
    write_class_images(photos / "more", 1, 2)
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--model", str(tmp_path / "run"), str(photos), "--top-k", "2", "--csv", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["path", "class_1", "probability_1", "class_2", "probability_2"]
    assert len(rows) == 6 and all(r[1] in ("circle", "cross", "stripes") for r in rows[1:])


@pytest.mark.parametrize("schedule", SETTINGS["optim.schedule"].choices)
def test_fewer_training_images_than_one_batch(tmp_path, image_folder, schedule, capsys):
    assert main(["train", "--data", str(image_folder), "--schedule", schedule, "--batch_size", "512",
                 "--min_steps", "0", "--run_dir", str(tmp_path / "run"), "--cache_dir", str(tmp_path / "cache"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "72 training images make no full batch of batch_size 512" in err
    assert "use --batch_size 72 or less" in err


def data_error(tmp_path, data, capsys) -> str:
    code = main(["train", "--data", str(data), "--batch_size", "4", "--epochs", "1", "--no-progress",
                 "--run_dir", str(tmp_path / "run"), "--cache_dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    return err


def test_a_test_class_that_training_lacks_is_an_error_and_the_reverse_a_warning(tmp_path, capsys):
    data = make_image_folder(tmp_path / "d", 4, 2)
    write_class_images(data / "test" / "dots", 0, 2)
    err = data_error(tmp_path, data, capsys)
    assert "test/ of" in err and "holds class(es) that train/ lacks: dots" in err
    only_train = make_image_folder(tmp_path / "e", 4, 2)
    write_class_images(only_train / "train" / "dots", 0, 4)
    capsys.readouterr()
    fit(tiny_config(tmp_path, only_train, epochs=1), progress=False)
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and re.match(r"warning: class\(es\) dots in train/ of .* have no test images$", warned[0])


@pytest.mark.parametrize("breakage, message", [
    ("empty_class", "hold no readable image"),
    ("case_clash", "differ only in case: Cross and cross"),
    ("empty_archive", "holds no images"),
    ("not_an_archive", "cannot read archive"),
])
def test_bad_data_gets_one_line(tmp_path, capsys, breakage, message):
    data = make_image_folder(tmp_path / "d", 4, 2)
    if breakage == "empty_class":
        (data / "train" / "empty").mkdir()
        (data / "train" / "empty" / "broken.png").write_bytes(b"\x89PNG not really")
        assert main(["train", "--data", str(data), "--skip_corrupt", "--batch_size", "4", "--no-progress",
                     "--run_dir", str(tmp_path / "run"), "--cache_dir", str(tmp_path / "cache")]) == 2
        err = capsys.readouterr().err
        assert re.search("warning: skipping cannot decode image .*broken.png", err) and message in err
        return
    if breakage == "case_clash":
        write_class_images(data / "train" / "Cross", 0, 2)
    if breakage == "empty_archive":
        data = tmp_path / "empty.tar.gz"
        with tarfile.open(data, "w:gz"):
            pass
    if breakage == "not_an_archive":
        data = tmp_path / "photo.jpg"
        Image.new("RGB", (8, 8)).save(data)
    assert message in data_error(tmp_path, data, capsys)


def test_a_path_that_is_neither_folder_nor_archive(tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "is neither a folder nor an archive" in data_error(tmp_path, fifo, capsys)


def test_the_first_decode_shows_progress(tmp_path, image_folder, capsys):
    from advconv.data.datasets import load_dataset

    load_dataset(image_folder, tmp_path / "cache", progress=True)
    assert "decoding tiny train/" in capsys.readouterr().err


@pytest.fixture(scope="module")
def five_classes_64(tmp_path_factory):
    """A dataset that is not CIFAR-10's shape: 5 of its classes, 200 training and 40 test images
    each, upscaled to 64x64 PNGs."""
    from .conftest import SHARED_TARBALL

    if not SHARED_TARBALL.exists():
        pytest.skip(f"real CIFAR-10 tarball not found at {SHARED_TARBALL} (only on machines with ../shared)")
    root, wanted = tmp_path_factory.mktemp("five") / "five64", ("bird", "cat", "frog", "ship", "truck")
    quota = {"train": 200, "test": 40}
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(SHARED_TARBALL, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 4 or parts[-2] not in wanted:
                continue
            key = (parts[-3], parts[-2])
            if taken.get(key, 0) >= quota[key[0]]:
                continue
            taken[key] = taken.get(key, 0) + 1
            folder = root / key[0] / key[1]
            folder.mkdir(parents=True, exist_ok=True)
            Image.open(tar.extractfile(member)).resize((64, 64), Image.BICUBIC).save(folder / f"{taken[key]:04d}.png")
            if len(taken) == 10 and all(taken[k] >= quota[k[0]] for k in taken):
                break
    return root


@pytest.mark.slow
def test_a_real_dataset_of_another_shape_trains_evaluates_predicts_exports(tmp_path, five_classes_64, capsys):
    import onnxruntime as ort

    run = tmp_path / "run"
    assert main(["train", "--data", str(five_classes_64), "--image_size", "64", "--epochs", "4", "--batch_size",
                 "50", "--pipeline", "batched", "--lr", "0.1", "--run_dir", str(run), "--no-progress",
                 "--cache_dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "1000 train / 200 test images" in out
    model = load_model(run)
    assert model.record.classes == ("bird", "cat", "frog", "ship", "truck") and model.record.input_size == 64
    assert main(["evaluate", "--model", str(run)]) == 0  # the test/ of the data it was trained on
    line = capsys.readouterr().out
    accuracy = float(re.search(r"\((\d+\.\d+)%\)", line).group(1))
    assert accuracy > 35.0  # 5 classes: 20 % is chance
    assert main(["evaluate", "--model", str(run), "--data", str(five_classes_64 / "test")]) == 0  # bare <class>/
    assert capsys.readouterr().out == line
    ship = five_classes_64 / "test" / "ship" / "0001.png"
    assert main(["predict", "--model", str(run), str(ship)]) == 0
    assert capsys.readouterr().out.startswith(f"{ship}: ")
    assert main(["export", "--model", str(run), "--tta", "--output", str(tmp_path / "m.onnx")]) == 0
    (logits,) = ort.InferenceSession(str(tmp_path / "m.onnx")).run(
        None, {"image": np.zeros((2, 3, 64, 64), dtype=np.float32)})
    assert logits.shape == (2, 5)
