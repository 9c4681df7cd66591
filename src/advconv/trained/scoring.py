"""A net scored on labelled images, with its test-time views: the one home of that, used by
training's evaluation, ``advconv evaluate``, ``compare``, ``plot``, ``explain`` and the page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import torch
from torch import nn

from ..data.datasets import ArrayDataset
from ..data.loaders import BatchLoader
from ..runtime import Runtime
from .views import TestTimeViews

if TYPE_CHECKING:
    from .hub import TrainedModel

BATCH = 500  # images scored at once: memory, not accuracy


@dataclass
class EvalResult:
    loss: float
    correct: int
    total: int
    predictions: torch.Tensor
    targets: torch.Tensor
    logits: torch.Tensor | None = None  # (N, classes), averaged over the views: what calibration reads

    @property
    def accuracy(self) -> float:
        return 100 * self.correct / max(self.total, 1)

    def line(self, name: str = "Test") -> str:
        return (f"{name} set: Average loss: {self.loss:.4f}, Accuracy: {self.correct}/{self.total} "
                f"({self.accuracy:.2f}%)")


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, rt: Runtime | None = None, tta_flip: bool = False,
             tta_shift: int = 0) -> EvalResult:
    """Mean loss and accuracy over a loader; logits are averaged over the test-time views.
    Without ``rt``: on the CPU in fp32."""
    rt = rt or Runtime()
    viewed = TestTimeViews(model.eval(), tta_flip, tta_shift)
    total_loss, all_logits, targets = 0.0, [], []
    for x, y in loader:
        x, y = x.to(rt.device, non_blocking=True), y.to(rt.device, non_blocking=True)
        with rt.autocast:
            logits = viewed(x)
        total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        all_logits.append(logits.float().cpu())
        targets.append(y.cpu())
    logits, targets = torch.cat(all_logits), torch.cat(targets)
    preds = logits.argmax(1)
    return EvalResult(total_loss / max(len(targets), 1), int((preds == targets).sum()), len(targets),
                      preds, targets, logits)


def score(trained: TrainedModel, images: ArrayDataset, tta_flip: bool | None = None,
          tta_shift: int | None = None) -> EvalResult:
    """A trained model on labelled images, in fp32 on the CPU, with the views its run was
    evaluated with unless ``tta_flip``/``tta_shift`` say otherwise."""
    record = trained.record
    loader = BatchLoader(images, record.stats, BATCH, train=False, channels_last=False)
    return evaluate(trained.net, loader, tta_flip=record.tta_flip if tta_flip is None else tta_flip,
                    tta_shift=record.tta_shift if tta_shift is None else tta_shift)
