"""The loops' pieces: test-time views and logit averaging."""

import pytest
import torch

from advconv.loops import evaluate
from advconv.views import tta_views


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


def test_evaluate_averages_logits_over_views():
    class HalfSums(torch.nn.Module):  # logits depend on where the bright pixel is
        def forward(self, x):
            assert not torch.is_grad_enabled()
            return torch.stack([x[:, 0, :, :4].sum((1, 2)), x[:, 0, :, 4:].sum((1, 2))], 1)

    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, 0, 0] = 1.0  # left half: class 0 without TTA, a tie with the mirror
    y = torch.tensor([0])
    plain = evaluate(HalfSums(), [(x, y)])
    mirrored = evaluate(HalfSums(), [(x, y)], tta=True)
    assert plain.correct == 1
    assert abs(mirrored.loss - float(torch.nn.functional.cross_entropy(torch.tensor([[0.5, 0.5]]), y))) < 1e-6
