"""Test-time views: the mirror and shifted copies a net's logits are averaged over."""

import pytest
import torch

from advconv.trained.views import tta_views


def test_tta_views_are_mirror_and_shifted_copies():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    assert [v.shape for v in tta_views(x, flip=False)] == [x.shape]
    views = tta_views(x, flip=True, shift=2)
    assert len(views) == 6 and all(v.shape == x.shape for v in views)
    assert torch.equal(views[1], x.flip(3))
    down_right, up_left = views[2], views[3]  # shifted copies of x itself
    assert torch.equal(down_right[..., 2:, 2:], x[..., :-2, :-2])
    assert torch.equal(up_left[..., :-2, :-2], x[..., 2:, 2:])
    assert torch.equal(views[4][..., 2:, 2:], x.flip(3)[..., :-2, :-2])
    with pytest.raises(ValueError, match="tta_shift must be in"):
        tta_views(x, flip=True, shift=8)
