"""What a search may choose: a net laid out C1 C2 C3 C4 from a few knobs, and the recipe's
optimizer settings, as compact data that ``propose`` turns into a ``Config``.

The net follows the shipped ones: an optional full-resolution stem, C1 a single conv that
closes the block, C2-C4 an entry conv then a conv wrapped in a skip connection, C1-C3 closing
with a stride-2 or a dilated conv. Nothing here enforces the assignment's rules: a candidate
that breaks one is refused by the rule check before it trains, and the sampler learns from it.
"""

from __future__ import annotations

import copy
from typing import Any

from ..config import Config, apply_overrides
from ..nets.specs import NetSpec, block_spec

STEM = (0, 16, 24)                          # a 3x3 conv at full resolution before C1 (0: none)
WIDTHS = {                                  # output channels of each block
    "c1": (24, 32, 48),
    "c2": (32, 48, 64),
    "c3": (64, 80, 96, 128),
    "c4": (96, 128, 160, 192),
}
KINDS = ("standard", "depthwise")           # C2-C4's two convs: dense, or depthwise-separable
DILATIONS = (1, 2)                          # of the conv inside C2-C4's skip connection
CLOSINGS = {                                # how C1-C3 end: (conv type, kernel, stride, padding, dilation)
    "stride": ("standard", 3, 2, 1, 1),
    "dilation": ("dilated", 3, 1, 2, 2),
}
ACTIVATIONS = ("relu", "hardswish")         # the cheap one, and the one the accurate recipe found better
RANGES = {                                  # recipe settings drawn from (low, high, on a log scale?)
    "optim.lr": (0.05, 0.8, True),          # peak lr (muon's filters step at muon_lr times it)
    "optim.weight_decay": (1e-4, 2e-3, True),
    "optim.label_smoothing": (0.0, 0.3, False),
}
CHOICES = {"batch_size": (256, 512, 1024)}  # recipe settings drawn from a few values


def propose_net(trial: Any) -> NetSpec:
    """A net from the trial's choices of stem, widths, kinds, dilations, closings and activation."""
    stem = trial.suggest_categorical("stem", STEM)
    widths = {name: trial.suggest_categorical(f"{name}_width", choices) for name, choices in WIDTHS.items()}

    def closing(name: str) -> tuple:
        kind, k, s, p, d = CLOSINGS[trial.suggest_categorical(f"{name}_closes", tuple(CLOSINGS))]
        return kind, widths[name], k, s, p, d

    blocks = [block_spec(*([("standard", stem, 3, 1, 1, 1)] if stem else []), closing("c1"))]
    for name in ("c2", "c3", "c4"):
        kind = trial.suggest_categorical(f"{name}_kind", KINDS)
        dilation = trial.suggest_categorical(f"{name}_dilation", DILATIONS)
        inner = "dilated" if kind == "standard" and dilation > 1 else kind
        layers = [(kind, widths[name], 3, 1, 1, 1), (inner, widths[name], 3, 1, dilation, dilation)]
        blocks.append(block_spec(*layers, *([closing(name)] if name != "c4" else []), residual=[1, 2]))
    return NetSpec(blocks=blocks, activation=trial.suggest_categorical("activation", ACTIVATIONS))


def propose(trial: Any, base: Config) -> Config:
    """``base`` with the trial's net and optimizer settings."""
    cfg = copy.deepcopy(base)
    cfg.model = propose_net(trial).to_dict()
    values = {path: trial.suggest_float(path, low, high, log=log) for path, (low, high, log) in RANGES.items()}
    values |= {path: trial.suggest_categorical(path, choices) for path, choices in CHOICES.items()}
    return apply_overrides(cfg, values)
