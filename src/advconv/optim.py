"""Optimizer, learning-rate schedule and weight average of a run, from the ``optim`` section of its config."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .config import OptimConfig


def build_optimizer(o: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying BN scales and biases only hurts.
    Frozen weights (``optim.whiten``'s first conv) are left out."""
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim > 1]
    no_decay = [p for p in trained if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr)
    return torch.optim.AdamW(groups, lr=o.lr)


def lr_multiplier(schedule: str, warmup: float, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base lr at a step: linear warmup, then the named schedule (constant,
    x0.1 at 50 % and 75 % of the steps, cosine or linear decay)."""
    warm = max(1, int(warmup * total_steps))

    def at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if schedule == "constant":
            return 1.0
        if schedule == "step":
            return 0.1 ** sum(step >= total_steps * f for f in (0.5, 0.75))
        frac = (step - warm) / max(1, total_steps - warm)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        return max(0.0, 1.0 - frac)  # linear

    return at


def build_scheduler(o: OptimConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    """A per-step scheduler: torch's OneCycleLR, or ``lr_multiplier`` for the other schedules."""
    if o.schedule == "onecycle":
        # torch's one-cycle divides by the warm-up's length in steps minus one: a warm-up of exactly
        # one step would divide by zero, so it starts at the peak instead (as a zero warm-up does)
        warmup = 0.0 if o.warmup * total_steps == 1 else o.warmup
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=o.lr, total_steps=total_steps, pct_start=warmup,
            cycle_momentum=o.name == "sgd" and o.momentum > 0,
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(o.schedule, o.warmup, total_steps))


def build_ema(o: OptimConfig, model: nn.Module) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of the weights (and BN buffers), when ``o.ema`` > 0."""
    if o.ema <= 0:
        return None
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(o.ema), use_buffers=True)
