"""Is one trained net better than another, or is the gap chance? A paired test on the same images.

Two nets scored on the same validation images disagree on only a few hundred of them; which
net gets more of those right is all that separates them. The exact McNemar test (a binomial
test on those discordant images) says how often a split at least that lopsided comes by
chance when neither net is better. It is far sharper than comparing two accuracies as if they
came from different images, and it is what a choice between recipes on one split should rest on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .evaluation import evaluate_checkpoint
from .scoring import EvalResult


@dataclass
class Comparison:
    first: EvalResult
    second: EvalResult
    only_first: int      # images the first net gets right and the second gets wrong
    only_second: int     # and the other way round
    p_value: float       # exact two-sided McNemar test: chance of a split this lopsided if neither is better

    def lines(self, first_name: str, second_name: str) -> list[str]:
        width = max(len(first_name), len(second_name))
        better = first_name if self.only_first > self.only_second else second_name
        verdict = ("the two agree on every image" if self.only_first == self.only_second == 0
                   else "a tie: each gets half of the images they disagree on" if self.only_first == self.only_second
                   else f"{better} is better (p < 0.05)" if self.p_value < 0.05
                   else "no difference beyond chance (p >= 0.05)")
        return [
            f"{first_name:<{width}}  {self.first.accuracy:.2f}% ({self.first.correct}/{self.first.total})",
            f"{second_name:<{width}}  {self.second.accuracy:.2f}% ({self.second.correct}/{self.second.total})",
            f"right only by the first: {self.only_first} images; only by the second: {self.only_second}",
            f"exact McNemar test: p = {self.p_value:.3g}: {verdict}",
        ]


def mcnemar_p(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts."""
    disagreements = only_first + only_second
    from scipy.stats import (
        binomtest,  # here, not at import: scipy.stats costs advconv's start-up a fraction of a second
    )

    return 1.0 if disagreements == 0 else float(binomtest(only_first, disagreements, 0.5).pvalue)


def paired(first: EvalResult, second: EvalResult) -> Comparison:
    """Compare two results on the same images, in the same order."""
    first_right = (first.predictions == first.targets).numpy()
    second_right = (second.predictions == second.targets).numpy()
    only_first = int(np.sum(first_right & ~second_right))
    only_second = int(np.sum(second_right & ~first_right))
    return Comparison(first, second, only_first, only_second, mcnemar_p(only_first, only_second))


def compare_models(first: str | Path, second: str | Path, data: str | None = None, split: str = "val",
                   tta_flip: bool | None = None, tta_shift: int | None = None,
                   cache_dir: str | Path | None = None) -> Comparison:
    """Score two trained models (anything ``load_model`` takes) on the same images and test the gap;
    ``split="val"`` (the default) uses the images both runs held out, so the test set stays unseen."""
    a, b = (evaluate_checkpoint(m, data, tta_flip=tta_flip, tta_shift=tta_shift, split=split, cache_dir=cache_dir)
            for m in (first, second))
    if not (np.array_equal(a.images.images, b.images.images) and np.array_equal(a.images.labels, b.images.labels)):
        raise ConfigError(f"the two models were scored on different {split} images ({len(a.images)} and "
                         f"{len(b.images)}): compare runs trained on the same data with the same val_split")
    return paired(a.result, b.result)
