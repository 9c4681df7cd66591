"""Predictions for image files and in-memory images, as the net was trained to see them."""


import numpy as np
import pytest
import torch
from PIL import Image

from advconv.cli import main
from advconv.data.datasets import ChannelStats, decode_image
from advconv.trained.hub import load_model
from advconv.trained.inference import predict, predict_files, preprocess

from .conftest import net_and_record


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
    # a file is seen as training sees its images: decoded and resized to the net's input, as data does it
    trained = load_model(checkpoint)
    small = np.array(decode_image(big, big.name, trained.record.input_size))
    (as_array,) = predict(trained, small, top_k=2)
    assert [c for c, _ in predictions[0].top] == [c for c, _ in as_array.top]
    assert np.allclose([p for _, p in predictions[0].top], [p for _, p in as_array.top], atol=1e-6)


def test_predict_unreadable_file(checkpoint, tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert main(["predict", "--checkpoint", str(checkpoint), str(bad)]) == 2
    assert f"cannot decode image {bad}" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "missing.png")]) == 2


def test_preprocess_matches_training_normalization():
    x = preprocess(np.full((1, 2, 2, 3), 255, dtype=np.uint8), ChannelStats((0.5, 0.5, 0.5), (0.5, 0.25, 0.5)))
    assert x.shape == (1, 3, 2, 2) and x[0, 1, 0, 0].item() == pytest.approx(2.0)


def test_predict_applies_the_runs_test_time_views(checkpoint, tmp_path):
    from advconv.trained.inference import with_views

    path = tmp_path / "img.png"
    image = np.random.default_rng(2).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    model, record = net_and_record(checkpoint)
    x = preprocess(image[None], record.stats)
    with torch.no_grad():
        viewed = with_views(model, record)(x).softmax(1)[0]
        plain = model(x).softmax(1)[0]
    assert not torch.allclose(viewed, plain)
    for tta_flip, expected in ((None, viewed), (False, plain)):
        (prediction,) = predict_files(checkpoint, [path], top_k=1, tta_flip=tta_flip)
        cls, p = prediction.top[0]
        assert cls == record.classes[int(expected.argmax())] and p == pytest.approx(float(expected.max()), abs=1e-5)


def test_predict_on_a_folder_with_no_image_says_so(checkpoint, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["predict", "--model", str(checkpoint), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no image file" in err


def test_predict_skips_broken_files_when_asked(checkpoint, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "good.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert main(["predict", "--model", str(checkpoint), str(folder)]) == 2  # stops, naming the file
    assert "broken.jpg" in capsys.readouterr().err
    assert main(["predict", "--model", str(checkpoint), "--skip-corrupt", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{folder / 'good.png'}: ") and out.count("\n") == 1
    assert err.startswith("warning: skipping cannot decode image") and "broken.jpg" in err


def test_an_image_over_the_pixel_limit_is_refused_in_one_line(checkpoint, tmp_path, capsys, monkeypatch):
    import warnings

    from advconv.data import datasets

    monkeypatch.setattr(datasets, "MAX_PIXELS", 100 * 100)  # a small limit: the same rule, a small file
    big = tmp_path / "big.png"
    Image.new("RGB", (101, 100)).save(big)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's own warning must not reach the user
        assert main(["predict", "--model", str(checkpoint), str(big)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "big.png is 101x100 pixels; advconv reads images of at most 0.01 megapixels" in err
    Image.new("RGB", (100, 100)).save(big)
    assert main(["predict", "--model", str(checkpoint), str(big)]) == 0


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    from advconv.data.datasets import decode_image
    from advconv.errors import DataError

    bomb = tmp_path / "bomb.png"  # 20,000 x 10,000 black pixels in a few hundred kilobytes
    Image.new("1", (20000, 10000)).save(bomb)
    with pytest.raises(DataError, match="bomb.png has more pixels than advconv reads"):
        decode_image(bomb, bomb.name)


def test_a_large_jpeg_is_decoded_reduced_to_what_the_net_needs(tmp_path, monkeypatch):
    from advconv.data import datasets

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (4000, 3000), (200, 30, 30)).save(photo, quality=90)
    seen, resize = [], datasets.image_array
    monkeypatch.setattr(datasets, "image_array", lambda img, size: seen.append(img.size) or resize(img, size))
    assert datasets.decode_image(photo, photo.name, 32).shape == (32, 32, 3)
    assert datasets.decode_image(photo, photo.name, None, fit=192).shape == (144, 192, 3)  # for showing
    assert seen == [(500, 375), (192, 144)]  # an eighth of each side decoded, not 12 megapixels
