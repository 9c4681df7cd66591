"""Per-layer summary of any net: output shape, parameters, MACs and receptive field.

Shapes come from forward hooks on one dummy batch; the receptive-field arithmetic is ours:
walking the leaf layers in execution order, a layer with kernel k, stride s, dilation d and
padding p grows the field by ``(d*(k-1)) * jump``, moves the centre of its first unit by
``(d*(k-1)/2 - p) * jump`` and multiplies the jump by s. That is exact for
chains, and for residual blocks whose skip is an identity (the longest path dominates).
Anything else (a projection shortcut, a concatenation, a functional op between layers, an
upsample) is detected from the data flow of that forward pass, and the summary then says
where it cannot follow instead of printing a field it cannot vouch for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .blocks import Residual


@dataclass
class LayerInfo:
    name: str
    kind: str
    input_shape: tuple[int, ...]     # (C, H, W) of the layer's first input
    output_shape: tuple[int, ...]
    params: int
    macs: int
    rf: tuple[int, int] | None      # None from the first place the chain cannot be followed
    jump: tuple[float, float] | None
    start: tuple[float, float] | None = None  # the centre of the first unit's field, in input pixels (row, col)

    def centre(self, row: int, col: int) -> tuple[float, float]:
        """Where the field of the unit at (row, col) of this layer's map is centred, in input pixels."""
        return (self.start[0] + row * self.jump[0], self.start[1] + col * self.jump[1])


@dataclass
class ModelSummary:
    layers: list[LayerInfo]
    total_params: int
    trainable_params: int
    input_size: int
    final_rf: tuple[int, int] | None      # None: not a chain the arithmetic can follow (see unseen)
    unseen: str | None = None             # where and why the receptive field cannot be followed
    functional_maxpools: int = 0          # max-pooling called as a function, not as a module

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def table(self) -> str:
        header = ("layer", "type", "output shape", "params", "MACs", "RF", "jump")
        rows = [header]
        for layer in self.layers:
            rows.append((
                layer.name, layer.kind, "x".join(map(str, layer.output_shape)), f"{layer.params:,}",
                f"{layer.macs:,}", *((format_pair(layer.rf), format_pair(layer.jump)) if layer.rf else ("?", "?")),
            ))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
        line = lambda r: "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(r, widths)))
        rule = "-" * len(line(header))
        out = [line(header), rule, *(line(r) for r in rows[1:]), rule]
        out.append(f"Total params: {self.total_params:,} (trainable {self.trainable_params:,})")
        out.append(f"Total MACs per image: {self.total_macs:,} ({self.total_macs / 1e6:.2f} M)")
        if self.final_rf is None:
            out.append(f"Final receptive field: not computed: {self.unseen}")
        else:
            out.append(f"Final receptive field: {format_pair(self.final_rf)} on a "
                       f"{self.input_size}x{self.input_size} input")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def format_pair(pair: tuple) -> str:
    a, b = (int(v) if float(v).is_integer() else round(v, 3) for v in pair)
    return f"{a}" if a == b else f"{a}x{b}"


def pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _units(model: nn.Module) -> list[nn.Module]:
    """What the summary follows: leaf layers, and ``Residual`` blocks, to see skips."""
    return [m for m in model.modules() if _is_leaf(m) or isinstance(m, Residual)]


def _padding(module: nn.Module, k: tuple, d: tuple) -> tuple:
    p = getattr(module, "padding", 0)
    if p == "same":
        return tuple(d_ * (k_ - 1) / 2 for k_, d_ in zip(k, d))
    return (0, 0) if p == "valid" else pair(p)


def _rf_step(module: nn.Module, rf: tuple, jump: tuple, start: tuple | None, in_shape,
             out_shape) -> tuple[tuple, tuple, tuple | None]:
    """Receptive field, jump and first unit's centre after ``module``, given them before it (per
    axis); the centre is None where the arithmetic does not place it."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s = pair(module.kernel_size), pair(module.stride)
        d = pair(getattr(module, "dilation", 1))
        if start is not None:
            start = tuple(c + (d_ * (k_ - 1) / 2 - p) * j
                          for c, k_, d_, p, j in zip(start, k, d, _padding(module, k, d), jump))
        rf = tuple(r + d_ * (k_ - 1) * j for r, k_, d_, j in zip(rf, k, d, jump))
        jump = tuple(j * s_ for j, s_ in zip(jump, s))
    elif isinstance(module, nn.ConvTranspose2d):
        k, s, d = pair(module.kernel_size), pair(module.stride), pair(module.dilation)
        # an output pixel sees ceil(k_eff / s) input pixels along each axis
        rf = tuple(r + (math.ceil((d_ * (k_ - 1) + 1) / s_) - 1) * j
                   for r, k_, d_, s_, j in zip(rf, k, d, s, jump))
        jump, start = tuple(j / s_ for j, s_ in zip(jump, s)), None
    elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and len(in_shape) == 4:
        # pooling to a smaller grid: each output cell covers in/out input cells
        for axis in (0, 1):
            cells = math.ceil(in_shape[2 + axis] / out_shape[2 + axis])
            rf = tuple(r + (cells - 1) * j if a == axis else r for a, (r, j) in enumerate(zip(rf, jump)))
        jump, start = tuple(j * in_shape[2 + a] / out_shape[2 + a] for a, j in enumerate(jump)), None
    return rf, jump, start


def _macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        k = pair(module.kernel_size)
        return out[0].numel() * (module.in_channels // module.groups) * k[0] * k[1]
    if isinstance(module, nn.ConvTranspose2d):
        k = pair(module.kernel_size)
        return inp[0].numel() * (module.out_channels // module.groups) * k[0] * k[1]
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0


MAXPOOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
RF_KINDS = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class _MaxPoolCalls(TorchFunctionMode):
    """Counts max-pooling done by functions (``F.max_pool2d`` in a custom forward) during a pass."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += "max_pool" in getattr(func, "__name__", "")
        return func(*args, **(kwargs or {}))


def _chain_break(events: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]], x: torch.Tensor) -> str | None:
    """Where the forward pass stops being a chain of leaves (identity-skip ``Residual`` blocks
    allowed), following the tensors themselves; None if it never does."""
    current = x
    for name, module, inp, out in events:
        if isinstance(module, Residual):
            current = out  # x + body(x): the body's path is the longest, already walked
            continue
        if inp is not current:
            return f"{name} ({type(module).__name__}) takes a tensor that is not the previous layer's output " \
                   "(a branch, a merge or a functional op)"
        if not isinstance(module, RF_KINDS) and out.dim() == 4 and out.shape[-2:] != inp.shape[-2:]:
            return f"{name} ({type(module).__name__}) resizes the map in a way the arithmetic does not know"
        current = out
    return None


def summarize(model: nn.Module, input_size: int = 32, in_channels: int = 3) -> ModelSummary:
    """Run one 1-image forward pass in eval mode and tabulate every leaf layer."""
    events: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module, inputs, output):
        events.append((names[module], module, inputs[0], output))

    handles = [m.register_forward_hook(hook) for m in _units(model)]
    was_training = model.training
    param = next(model.parameters(), None)
    x = torch.zeros(1, in_channels, input_size, input_size, device=param.device if param is not None else "cpu")
    try:
        model.eval()
        with torch.no_grad(), _MaxPoolCalls() as maxpools:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    unseen = _chain_break(events, x)
    layers, rf, jump, start, final_rf, followed = [], (1, 1), (1, 1), (0.0, 0.0), (1, 1), True
    for name, module, inp, out in events:
        if isinstance(module, Residual):
            continue
        followed = followed and not (unseen and unseen.startswith(f"{name} ("))
        rf, jump, start = _rf_step(module, rf, jump, start, tuple(inp.shape), tuple(out.shape))
        if out.dim() == 4 and out.shape[-1] > 1:
            final_rf = rf
        layers.append(LayerInfo(
            name=name, kind=type(module).__name__, input_shape=tuple(inp.shape[1:]),
            output_shape=tuple(out.shape[1:]),
            params=sum(p.numel() for p in module.parameters()),
            macs=_macs(module, inp, out), rf=rf if followed else None, jump=jump if followed else None,
            start=start if followed else None,
        ))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    module_pools = sum(isinstance(m, MAXPOOLS) for _, m, _, _ in events)  # calls made by modules
    return ModelSummary(layers, total, trainable, input_size, None if unseen else final_rf, unseen,
                        max(0, maxpools.count - module_pools))
