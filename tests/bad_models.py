"""Deliberately rule-breaking networks for the rule checker's tests (importable by the CLI)."""

from torch import nn

from advconv.models import NetSpec, _block, build_net


def with_maxpool() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1),
        nn.Conv2d(32, 32, 3, padding=2, dilation=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def without_dilation() -> NetSpec:
    return NetSpec(blocks=[
        _block(("standard", 16, 3, 2, 1, 1)),
        _block(("depthwise", 32, 3, 2, 1, 1)),
        _block(("standard", 32, 3, 2, 1, 1)),
        _block(("standard", 32, 3, 1, 1, 1), ("standard", 32, 3, 1, 1, 1)),
    ])


def over_budget() -> nn.Module:
    return build_net(NetSpec(blocks=[
        _block(("standard", 64, 3, 2, 1, 1)),
        _block(("dilated", 128, 3, 2, 2, 2)),
        _block(("depthwise", 256, 3, 2, 1, 1)),
        _block(("standard", 256, 3, 1, 1, 1)),
    ]))


def small_receptive_field() -> nn.Module:
    return build_net(NetSpec(blocks=[
        _block(("standard", 16, 3, 1, 1, 1)),
        _block(("dilated", 16, 3, 1, 2, 2)),
        _block(("depthwise", 16, 3, 1, 1, 1)),
        _block(("pointwise", 16, 1, 1, 0, 1)),
    ]))
