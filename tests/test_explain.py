"""Grad-CAM grids of a trained net."""


import numpy as np

from advconv.cli import main

from .conftest import net_and_record


def test_gradcam_grid(checkpoint, tmp_path):
    out = tmp_path / "cam.png"
    assert main(["explain", "--checkpoint", str(checkpoint), "--index", "0", "5", "--output", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_gradcam_overlays_have_image_shape(checkpoint):
    from advconv.explain import gradcam_overlays

    model, record = net_and_record(checkpoint)
    images = np.random.default_rng(1).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    overlays = gradcam_overlays(model, images, [0, 1, 2], record.stats)
    assert overlays.shape == (3, 32, 32, 3) and overlays.dtype == np.uint8
