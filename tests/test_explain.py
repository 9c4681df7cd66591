"""Grad-CAM grids of a trained net."""


import numpy as np

from advconv.cli import main

from .conftest import net_and_record


def test_gradcam_grid(checkpoint, tmp_path):
    from PIL import Image

    from advconv.trained.evaluation import evaluate_checkpoint
    from advconv.trained.explain import explain_images

    shown = explain_images(checkpoint, indices=[0, 5])
    evaluation = evaluate_checkpoint(checkpoint)
    classes = evaluation.trained.record.classes
    preds, targets = evaluation.result.predictions, evaluation.result.targets
    assert shown.titles == [f"#0 true {classes[targets[0]]}", f"Grad-CAM: {classes[preds[0]]}",
                            f"#5 true {classes[targets[5]]}", f"Grad-CAM: {classes[preds[5]]}"]
    assert np.array_equal(shown.images, evaluation.images.images[[0, 5]]) and shown.split == "test"
    assert not np.array_equal(shown.overlays, shown.images)  # a heatmap is blended on
    out = tmp_path / "cam.png"
    assert main(["explain", "--checkpoint", str(checkpoint), "--index", "0", "5", "--output", str(out)]) == 0
    with Image.open(out) as grid:
        assert grid.format == "PNG" and grid.width > 2 * grid.height  # one row of six panels


def test_gradcam_overlays_have_image_shape(checkpoint):
    from advconv.trained.explain import gradcam_overlays

    model, record = net_and_record(checkpoint)
    images = np.random.default_rng(1).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    overlays = gradcam_overlays(model, images, [0, 1, 2], record.stats)
    assert overlays.shape == (3, 32, 32, 3) and overlays.dtype == np.uint8
    assert not np.array_equal(overlays, images)  # a heatmap is blended on
    other_class = gradcam_overlays(model, images, [1, 2, 0], record.stats)
    assert not np.array_equal(overlays, other_class)  # and it is the named class's


def test_explain_looks_at_the_block_it_is_given(checkpoint, capsys, tmp_path):
    from advconv.trained.explain import explain_images

    early, last = (explain_images(checkpoint, indices=[0, 5], layer=layer).overlays for layer in ("c2", None))
    assert np.array_equal(last, explain_images(checkpoint, indices=[0, 5], layer="c4").overlays)  # c4: the default
    assert not np.array_equal(early, last)
    assert main(["explain", "--model", str(checkpoint), "--layer", "c9", "--output", str(tmp_path / "x.png")]) == 2
    assert "no block 'c9'; the net's blocks are c1, c2, c3, c4" in capsys.readouterr().err
