"""Optimizer, learning-rate schedule and weight average of a run, from the ``optim`` section of its config."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..config import OptimConfig


def build_optimizer(o: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying BN scales and biases only hurts.
    Frozen weights (``optim.whiten``'s first conv) are left out. ``muon``: the dense conv filter
    banks (``muon_params``) take Muon's orthogonalized steps, the rest SGD's."""
    trained = [p for p in model.parameters() if p.requires_grad]
    orthogonal = {id(p) for p in muon_params(model)} if o.name == "muon" else set()
    decay = [p for p in trained if p.ndim > 1 and id(p) not in orthogonal]
    no_decay = [p for p in trained if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.name == "muon":
        banks = [p for p in trained if id(p) in orthogonal]
        groups.insert(0, {"params": banks, "weight_decay": 0.0, "orthogonalize": True, "lr": o.lr * o.muon_lr})
        return Muon(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, muon_momentum=o.muon_momentum)
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr)
    return torch.optim.AdamW(groups, lr=o.lr)


def muon_params(model: nn.Module) -> list[nn.Parameter]:
    """The filter banks Muon orthogonalizes: every dense conv's weight (groups 1, pointwise
    included), not a depthwise conv's (one filter per channel: nothing to orthogonalize across),
    not the net's last conv or linear layer (the classifier, which maps to classes, not features),
    and not a frozen one."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return [m.weight for m in layers[:-1]
            if isinstance(m, nn.Conv2d) and m.groups == 1 and m.weight.requires_grad]


def orthogonalized(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """The nearest semi-orthogonal matrix to ``g`` (rows x columns), approximately: a quintic
    Newton-Schulz iteration with the coefficients of Keller Jordan's Muon, which push every
    singular value towards 1 in a few steps (to about 0.7-1.2: close enough for an update)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float() / (g.norm() + 1e-7)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Muon for conv filter banks beside SGD for everything else, in one optimizer so that one
    schedule drives both. A group with ``orthogonalize`` updates each parameter, flattened to
    (out channels, in x k x k), by its orthogonalized Nesterov momentum, and first rescales the
    bank to a fixed norm (sqrt of its out channels), so that the step size alone sets how fast
    it turns; its momentum is ``muon_momentum``, left alone by a one-cycle schedule. The other
    groups are plain SGD with (Nesterov) momentum and weight decay. torch.optim.Muon takes
    2-D parameters only; conv filters are 4-D, hence this class."""

    def __init__(self, params, lr: float, momentum: float = 0.9, nesterov: bool = True,
                 muon_momentum: float = 0.6) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=0.0,
                                      orthogonalize=False, muon_momentum=muon_momentum))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            ortho = group["orthogonalize"]
            momentum = group["muon_momentum"] if ortho else group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if not group["weight_decay"] else p.grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g.clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(g)
                buf = state["momentum_buffer"]
                g = g.add(buf, alpha=momentum) if group["nesterov"] else buf
                if ortho:
                    p.mul_(len(p) ** 0.5 / (p.norm() + 1e-7))
                    g = orthogonalized(g.reshape(len(g), -1)).view_as(p)
                p.add_(g, alpha=-group["lr"])


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
            optimizer, max_lr=[group["lr"] for group in optimizer.param_groups], total_steps=total_steps,
            pct_start=warmup, cycle_momentum=o.name in ("sgd", "muon") and o.momentum > 0,
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(o.schedule, o.warmup, total_steps))


def build_ema(o: OptimConfig, model: nn.Module) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of the weights (and BN buffers), when ``o.ema`` > 0."""
    if o.ema <= 0:
        return None
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(o.ema), use_buffers=True)
