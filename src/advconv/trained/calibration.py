"""Probabilities users can trust: one temperature, and an "unsure" answer.

A net's softmax is often too sure of itself. One scalar fixes most of that (temperature
scaling, Guo et al. 2017): the logits are divided by T, fitted to minimise the log loss on
images the net did not train on, which leaves every prediction's class as it was. The expected
calibration error (15 bins, torchmetrics) says how far the stated confidence is from the
accuracy, before and after.

The unsure answer flags an image whose score falls below a threshold chosen on held-out
CIFAR-10-like images (the one that keeps ``KEEP`` of them): the top-k are still shown, marked
"unsure: maybe none of the classes". The score is the maximum probability after the
temperature, or the energy (``T * logsumexp(logits / T)``, Liu et al. 2020); which one a set of
weights uses is stored with them, chosen by measurement in the project's lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: the command's parser reads SCORES without it
    import torch

BINS = 15       # the reliability diagram's bins, as the calibration literature reports them
KEEP = 0.95     # the share of held-out in-distribution images the unsure threshold keeps
UNSURE = "unsure: maybe none of the classes"
SCORES = ("max_probability", "energy")  # how sure the net is of an image (``scores``)


def scores(logits: torch.Tensor, kind: str, temperature: float = 1.0) -> torch.Tensor:
    """How sure the net is of each image, higher meaning surer: ``max_probability`` or ``energy``."""
    import torch

    scaled = logits.float() / temperature
    if kind == "max_probability":
        return scaled.softmax(1).amax(1)
    if kind == "energy":
        return temperature * torch.logsumexp(scaled, 1)
    raise ValueError(f"unknown score {kind!r}; expected one of {', '.join(SCORES)}")


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 that minimises the log loss of softmax(logits / T) on these labelled images."""
    import torch

    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    logits = logits.detach().float()

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def calibration_error(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """The expected calibration error in percent (``BINS`` equal-width bins of the top probability)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    probs = (logits.float() / temperature).softmax(1)
    return 100 * float(multiclass_calibration_error(probs, labels, num_classes=logits.shape[1], n_bins=BINS))


def threshold_keeping(score: torch.Tensor, keep: float = KEEP) -> float:
    """The score below which ``1 - keep`` of these (in-distribution) images fall."""
    import torch

    return float(torch.quantile(score.float(), 1 - keep))


@dataclass
class Calibration:
    """What is stored with a set of weights, and what was measured to choose it."""

    temperature: float
    unsure_score: str
    unsure_threshold: float
    fitted_on: str                  # the images, in words
    ece_before: float               # % on the images it was reported on (not those fitted)
    ece_after: float

    def lines(self) -> list[str]:
        return [f"temperature {self.temperature:.3f}, fitted on {self.fitted_on}",
                f"expected calibration error ({BINS} bins): {self.ece_before:.2f} % before, "
                f"{self.ece_after:.2f} % after",
                f"unsure below {self.unsure_score} {self.unsure_threshold:.4g} (keeps {KEEP:.0%} of those images)"]


def calibrate(logits: torch.Tensor, labels: torch.Tensor, score: str = "max_probability",
              held_out: bool = True) -> Calibration:
    """A temperature and an unsure threshold from labelled logits the net did not train on.
    ``held_out``: the images are a validation split, fitted and reported on whole; else they
    are a test set, split in two halves, each fitted and reported on the other (the stored
    temperature and threshold are the two fits' means)."""
    import torch

    if held_out:
        t = fit_temperature(logits, labels)
        return Calibration(t, score, threshold_keeping(scores(logits, score, t)), "the run's validation split",
                           calibration_error(logits, labels), calibration_error(logits, labels, t))
    half = torch.Generator().manual_seed(0)
    order = torch.randperm(len(labels), generator=half)
    parts = (order[: len(order) // 2], order[len(order) // 2:])
    temps, before, after, thresholds = [], [], [], []
    for fit, report in (parts, parts[::-1]):
        t = fit_temperature(logits[fit], labels[fit])
        temps.append(t)
        thresholds.append(threshold_keeping(scores(logits[fit], score, t)))
        before.append(calibration_error(logits[report], labels[report]))
        after.append(calibration_error(logits[report], labels[report], t))
    return Calibration(sum(temps) / 2, score, sum(thresholds) / 2,
                       "one half of the test set, reported on the other, both ways (the means)",
                       sum(before) / 2, sum(after) / 2)

