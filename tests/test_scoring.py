"""Scoring: logits averaged over the test-time views."""

import torch

from advconv.trained.scoring import evaluate


def test_evaluate_averages_logits_over_views():
    class HalfSums(torch.nn.Module):  # logits depend on where the bright pixel is
        def forward(self, x):
            assert not torch.is_grad_enabled()
            return torch.stack([x[:, 0, :, :4].sum((1, 2)), x[:, 0, :, 4:].sum((1, 2))], 1)

    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, 0, 0] = 1.0  # left half: class 0 without TTA, a tie with the mirror
    y = torch.tensor([0])
    plain = evaluate(HalfSums(), [(x, y)])
    mirrored = evaluate(HalfSums(), [(x, y)], tta_flip=True)
    assert plain.correct == 1
    assert abs(mirrored.loss - float(torch.nn.functional.cross_entropy(torch.tensor([[0.5, 0.5]]), y))) < 1e-6
