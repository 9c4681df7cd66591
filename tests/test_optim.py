"""Optimizers and learning-rate schedules."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from advconv.config import SETTINGS, OptimConfig
from advconv.hub import create_model
from advconv.optim import build_ema, build_optimizer, build_scheduler, lr_multiplier


@pytest.mark.parametrize("name", SETTINGS["optim.name"].choices)
def test_weight_decay_only_on_weights(name):
    model = create_model("assignment9")
    optimizer = build_optimizer(OptimConfig(name=name, weight_decay=1e-3), model)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 1e-3 and all(p.ndim > 1 for p in decay["params"])
    assert no_decay["weight_decay"] == 0.0 and all(p.ndim == 1 for p in no_decay["params"])
    assert type(optimizer).__name__.lower() == name


@pytest.mark.parametrize("schedule", SETTINGS["optim.schedule"].choices)
def test_schedules_warm_up_then_decay(schedule):
    o = OptimConfig(schedule=schedule, lr=0.1, warmup=0.2)
    optimizer = build_optimizer(o, torch.nn.Linear(2, 2))
    scheduler = build_scheduler(o, optimizer, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = max(lrs)
    assert peak == pytest.approx(0.1, rel=1e-6)
    assert lrs[0] < 0.1 * peak and lrs.index(peak) in range(18, 22)  # every schedule warms up over 20 %
    if schedule == "constant":
        assert lrs[20:] == [lrs[20]] * 80
    elif schedule == "step":  # x0.1 at 50 % and 75 % of the steps
        assert lrs[49] == pytest.approx(0.1) and lrs[50] == pytest.approx(0.01) and lrs[99] == pytest.approx(0.001)
    else:
        assert lrs[-1] < 0.1 * peak


def test_lr_multiplier_linear_ends_at_zero():
    at = lr_multiplier("linear", 0.1, 100)
    assert at(9) == 1.0 and at(100) == 0.0


def test_ema_only_when_asked():
    model = torch.nn.Linear(2, 2)
    assert build_ema(OptimConfig(ema=0.0), model) is None
    assert build_ema(OptimConfig(ema=0.99), model) is not None


@given(steps=st.integers(1, 50), warmup=st.floats(0, 0.99),
       schedule=st.sampled_from(SETTINGS["optim.schedule"].choices))
@settings(max_examples=300, deadline=None)
def test_every_schedule_length_and_warmup_runs_to_its_end(steps, warmup, schedule):
    o = OptimConfig(schedule=schedule, lr=0.1, warmup=warmup)
    optimizer = build_optimizer(o, torch.nn.Linear(2, 2))
    scheduler = build_scheduler(o, optimizer, total_steps=steps)
    for _ in range(steps):
        lr = optimizer.param_groups[0]["lr"]
        assert 0 <= lr <= 0.1 * (1 + 1e-6)
        optimizer.step()
        scheduler.step()
