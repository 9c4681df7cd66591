"""Optimizers and learning-rate schedules."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from advconv.config import SETTINGS, OptimConfig
from advconv.nets.specs import MODELS
from advconv.trained.hub import create_model
from advconv.training.optim import Muon, build_ema, build_optimizer, build_scheduler, lr_multiplier


@pytest.mark.parametrize("name", SETTINGS["optim.name"].choices)
def test_weight_decay_only_on_weights(name):
    model = create_model("assignment9")
    optimizer = build_optimizer(OptimConfig(name=name, weight_decay=1e-3), model)
    decay, no_decay = optimizer.param_groups[-2:]  # muon's filter banks come first, undecayed (see below)
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


@pytest.mark.parametrize("name", sorted(MODELS))
def test_muon_orthogonalizes_exactly_the_dense_conv_filters(name):
    model = create_model(name)
    optimizer = build_optimizer(OptimConfig(name="muon", lr=0.4, muon_lr=0.3), model)
    banks, *sgd = optimizer.param_groups
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    dense = [m.weight for m in convs if m.groups == 1 and m is not model.head]
    assert banks["orthogonalize"] and [id(p) for p in banks["params"]] == [id(p) for p in dense]
    assert banks["lr"] == pytest.approx(0.12) and banks["weight_decay"] == 0.0
    assert not any(g["orthogonalize"] for g in sgd)
    everything = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(everything) == sorted(id(p) for p in model.parameters())  # each parameter in one group, once
    depthwise = [m.weight for m in convs if m.groups > 1]
    assert all(any(p is w for g in sgd for p in g["params"]) for w in depthwise + [model.head.weight])


def test_a_muon_step_moves_a_filter_bank_by_an_orthogonal_matrix_times_the_lr():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3, bias=False)
    optimizer = Muon([{"params": [conv.weight], "orthogonalize": True}], lr=0.1)
    conv.weight.grad = torch.randn_like(conv.weight)
    before = conv.weight.detach().clone()
    optimizer.step()
    rescaled = before * 16 ** 0.5 / before.norm()  # the bank is first brought to norm sqrt(out channels)
    step = ((rescaled - conv.weight.detach()) / 0.1).reshape(16, -1)
    singular = torch.linalg.svdvals(step)
    assert len(singular) == 16 and singular.min() > 0.6 and singular.max() < 1.3  # all directions move alike
