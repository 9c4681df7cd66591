"""Test-time views: a net's logits averaged over its input and mirrored or shifted copies.

One home for evaluation during training, prediction and an exported ``--tta`` graph, so that
each scores what the others do.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


def tta_views(x: torch.Tensor, flip: bool, shift: int = 0) -> list[torch.Tensor]:
    """The test-time views of a batch: itself, its mirror (``flip``), and each of those moved
    ``shift`` pixels down-right and up-left (reflected borders, as ``translate`` trains)."""
    size = x.shape[-1]
    if not 0 <= shift < size:
        raise ConfigError(f"tta_shift must be in [0, {size - 1}] for {size}x{size} images, got {shift}")
    views = [x, x.flip(3)] if flip else [x]
    if shift:
        padded = [nn.functional.pad(v, (shift,) * 4, mode="reflect") for v in views]
        views += [p[..., o:o + size, o:o + size] for p in padded for o in (0, 2 * shift)]
    return views


class TestTimeViews(nn.Module):
    """A net whose logits are averaged over ``tta_views`` of its input: what evaluation,
    prediction and an exported ``--tta`` graph all run, so each scores what the others do."""

    def __init__(self, model: nn.Module, flip: bool, shift: int = 0) -> None:
        super().__init__()
        self.model, self.flip, self.shift = model, flip, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = tta_views(x, self.flip, self.shift)
        return sum(self.model(v).float() for v in views) / len(views)
