"""Deliberately rule-breaking networks for the rule checker's tests (importable by the CLI)."""

from torch import nn
from torch.nn import functional as F

from advconv.nets.models import build_net
from advconv.nets.specs import NetSpec, block_spec


def with_maxpool() -> nn.Module:
    net = build_net(NetSpec(blocks=[
        block_spec(("standard", 16, 3, 2, 1, 1)),
        block_spec(("dilated", 32, 3, 2, 2, 2)),
        block_spec(("depthwise", 32, 3, 2, 1, 1)),
        block_spec(("standard", 32, 3, 1, 1, 1), ("standard", 32, 3, 1, 1, 1)),
    ]))
    net.c1 = nn.Sequential(net.c1, nn.MaxPool2d(3, 1, 1))  # size kept: only the pooling breaks a rule
    return net


def arbitrary_sequential() -> nn.Module:
    """Every layer rule holds, but there are no blocks named c1-c4 to check the layout on."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1), nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16), nn.Conv2d(16, 32, 1),
        nn.Conv2d(32, 32, 3, 2, 1), nn.Conv2d(32, 32, 3, 2, 1), nn.Conv2d(32, 32, 3, 1, 1), nn.Conv2d(32, 32, 3, 1, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def block_left_open() -> NetSpec:
    """C2 closes with a plain conv: neither strided nor dilated."""
    return NetSpec(blocks=[
        block_spec(("standard", 16, 3, 2, 1, 1)),
        block_spec(("dilated", 32, 3, 2, 2, 2), ("standard", 32, 3, 1, 1, 1)),
        block_spec(("depthwise", 32, 3, 2, 1, 1)),
        block_spec(("standard", 32, 3, 1, 1, 1), ("standard", 32, 3, 1, 1, 1)),
    ])


def without_dilation() -> NetSpec:
    return NetSpec(blocks=[
        block_spec(("standard", 16, 3, 2, 1, 1)),
        block_spec(("depthwise", 32, 3, 2, 1, 1)),
        block_spec(("standard", 32, 3, 2, 1, 1)),
        block_spec(("standard", 32, 3, 1, 1, 1), ("standard", 32, 3, 1, 1, 1)),
    ])


def over_budget() -> nn.Module:
    return build_net(NetSpec(blocks=[
        block_spec(("standard", 64, 3, 2, 1, 1)),
        block_spec(("dilated", 128, 3, 2, 2, 2)),
        block_spec(("depthwise", 256, 3, 2, 1, 1)),
        block_spec(("standard", 256, 3, 1, 1, 1), ("standard", 256, 3, 1, 1, 1)),
    ]))


def small_receptive_field() -> nn.Module:
    """Blocks that close dilated, without striding: a field of 13 pixels, below the course's 45."""
    return build_net(NetSpec(blocks=[
        block_spec(("dilated", 16, 3, 1, 2, 2)),
        block_spec(("dilated", 16, 3, 1, 2, 2)),
        block_spec(("depthwise", 16, 3, 1, 2, 2)),
        block_spec(("pointwise", 16, 1, 1, 0, 1)),
    ]))


class FunctionalMaxPool(nn.Module):
    """Max-pooling hidden in forward as a function call: no MaxPool module to find."""

    def __init__(self) -> None:
        super().__init__()
        self.body = build_net(NetSpec(blocks=[
            block_spec(("standard", 16, 3, 1, 1, 1)), block_spec(("dilated", 16, 3, 1, 2, 2)),
            block_spec(("depthwise", 16, 3, 1, 1, 1)), block_spec(("standard", 16, 3, 1, 1, 1))]))

    def forward(self, x):
        c1, c2, c3, c4, *head = self.body
        x = c2(F.max_pool2d(c1(x), 2))
        for layer in (c3, c4, *head):
            x = layer(x)
        return x


class Upsampled(nn.Module):
    """An upsample between convs: the receptive-field arithmetic cannot follow it."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Upsample(scale_factor=2), nn.Conv2d(8, 8, 3, 1, 1),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.layers(x)
