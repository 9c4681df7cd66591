"""The learning-rate range test (Leslie Smith, 2015): where to put one-cycle's peak.

A few hundred steps of the config's own net, data pipeline, precision and optimizer, the
learning rate growing exponentially from ``start_lr`` to ``end_lr``; the loss is smoothed (an
exponential average, bias-corrected) and the test stops once it has risen far above its best.
The suggestion is a tenth of the learning rate at the smoothed loss's minimum: at the minimum
itself the loss is already about to blow up, and one-cycle spends its middle steps near the
peak. It is given only where the curve turns (past its lowest point the smoothed loss climbs
back above where it started): a curve that stays low to the ramp's end, as Muon's does, marks
no turn, and the test says so instead of giving a number. torch-lr-finder does the same test
on a plain DataLoader and optimizer; this one runs through advconv's own pipelines, precision
context and Muon groups, which that one cannot.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Callable

from ..config import Config
from ..errors import ConfigError, TrainingDiverged

SMOOTHING = 0.98    # weight of the running average: about 50 steps of memory
DIVERGED = 4.0      # stop once the smoothed loss is this many times its best
MAX_PASSES = 4      # a test that would show each training image more often measures memorising
RULE = "a tenth of the lr at the smoothed loss's minimum"
STEPS, START_LR, END_LR = 200, 1e-4, 10.0  # the ramp: enough steps per decade to see the turn, from far below
FIGURE = "lr_find.png"                      # where the figure goes unless told otherwise


@dataclass
class RangeTest:
    lrs: list[float]        # the lr of each step (optim.lr's scale; Muon's filters keep their ratio to it)
    losses: list[float]     # the training loss of each step
    smoothed: list[float]
    stopped: str            # why the test ended
    rescaled: float = 1.0   # optim.lr as configured, per lr of the batch that ran (a small set's is smaller)
    diverged: bool = False  # stopped because the loss blew up before end_lr

    @property
    def lowest(self) -> int:
        """The step at which the smoothed loss is lowest."""
        return min(range(len(self.smoothed)), key=self.smoothed.__getitem__)

    @property
    def minimum(self) -> float:
        """The lr at the smoothed loss's lowest point."""
        return self.lrs[self.lowest]

    @property
    def turned(self) -> bool:
        """Whether the curve shows where training breaks: past its lowest point the smoothed loss
        climbs back above where it started (or blows up). A curve that stays low to the ramp's end
        (Muon steps the filters at a fixed size) has a lowest point that marks no such turn."""
        return self.diverged or max(self.smoothed[self.lowest:]) > self.smoothed[0]

    @property
    def suggestion(self) -> float | None:
        """The peak lr to configure (``--lr``), at the configured batch as a run rescales it; None
        where the loss never turned up (a flat curve, as Muon's fixed-size filter steps give): its
        lowest point then says nothing about where training breaks (``turned``)."""
        return self.minimum / 10 * self.rescaled if self.turned else None

    def lines(self) -> list[str]:
        lines = [f"range test: {len(self.lrs)} steps from lr {self.lrs[0]:.3g} to {self.lrs[-1]:.3g}; {self.stopped}",
                 f"smoothed loss lowest at lr {self.minimum:.3g}"]
        if self.suggestion is None:
            return lines + ["no suggestion: past its lowest point the loss never climbs back above where it started, "
                            "so this curve cannot place one-cycle's peak; keep the recipe's lr, or compare short "
                            "runs on a validation split (--val_split)"]
        lines.append(f"suggested peak lr for one-cycle: --lr {self.suggestion:.3g} ({RULE})")
        if self.rescaled != 1:
            lines[-1] += (f"; this set trains at a smaller batch than configured, where a run multiplies "
                          f"--lr by {1 / self.rescaled:.3g}")
        return lines


def lr_range_test(cfg: Config, steps: int = STEPS, start_lr: float = START_LR, end_lr: float = END_LR,
                  progress: bool = False, say: Callable[[str], None] = print) -> RangeTest:
    """Run the test on ``cfg``'s net (from its ``pretrained`` weights when set) and data."""
    from torch import nn  # here, not at import: the command's parser reads this module's defaults without torch

    from ..runtime import Runtime, grad_scaler, set_seed
    from .loops import train_step
    from .optim import build_optimizer
    from .train import build_model, checked_spec, load_data, starting_weights

    if not (steps >= 10 and 0 < start_lr < end_lr):
        raise ConfigError(f"the range test needs at least 10 steps and 0 < start_lr < end_lr; got {steps} steps "
                          f"from {start_lr:g} to {end_lr:g}")
    cfg = copy.deepcopy(cfg)
    weights = starting_weights(cfg)
    spec = checked_spec(cfg)
    rt = Runtime.start(cfg.device, cfg.precision)
    set_seed(cfg.seed, cfg.deterministic)
    configured = cfg.optim.lr
    data = load_data(cfg, spec, rt, progress)  # may shrink the batch and the lr for a small set
    for note in data.notes:
        say(note)
    if data.steps_per_epoch * MAX_PASSES < steps:
        raise ConfigError(f"{data.sizes[0]} training images make {data.steps_per_epoch} batches of {cfg.batch_size}: "
                          f"{steps} steps would show each image more than {MAX_PASSES} times; give --steps "
                          f"{data.steps_per_epoch * MAX_PASSES} or fewer, or more images")
    model = build_model(cfg, spec, rt, data, weights, say).train()
    optimizer = build_optimizer(cfg.optim, model)
    share = [group["lr"] / cfg.optim.lr for group in optimizer.param_groups]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
    scaler = grad_scaler(rt)
    batches = itertools.chain.from_iterable(data.train_for(epoch) for epoch in itertools.count())
    test = RangeTest([], [], [], f"reached end_lr {end_lr:g} without diverging", configured / cfg.optim.lr)
    average, best = 0.0, math.inf
    for step, (x, y) in zip(range(steps), batches):
        lr = start_lr * (end_lr / start_lr) ** (step / (steps - 1))
        for group, k in zip(optimizer.param_groups, share):
            group["lr"] = lr * k
        try:
            _, loss = train_step(model, x.to(rt.device), y.to(rt.device), optimizer, loss_fn, rt, scaler, step)
        except TrainingDiverged:
            test.stopped, test.diverged = f"stopped at lr {lr:.3g}: the loss is no longer finite", True
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * loss.item()
        smoothed = average / (1 - SMOOTHING ** (step + 1))
        test.lrs.append(lr)
        test.losses.append(loss.item())
        test.smoothed.append(smoothed)
        best = min(best, smoothed)
        if smoothed > DIVERGED * best:
            test.stopped = f"stopped at lr {lr:.3g}: the smoothed loss rose to {DIVERGED:g}x its best"
            test.diverged = True
            break
    if len(test.lrs) < 2:
        raise ConfigError(f"the loss diverged at the first steps, from lr {start_lr:g}: give a lower --start_lr")
    return test
