"""Convolution kinds taught next to each other, and builders that stack them.

Every builder returns a plain ``nn.Module``/``nn.Sequential`` so that a model is a
readable tree, and so that the summary can walk it layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import ConfigError

CONV_TYPES = ("standard", "pointwise", "depthwise", "dilated", "spatially_separable", "transpose")
NORMALIZATIONS = ("batch", "group", "layer", "none")

# the activations a spec may name: ReLU is the course's and the cheapest on a CPU; the smooth
# ones cost an elementwise pass more (measured in the project's lab)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "hardswish": nn.Hardswish,
}


class DepthwiseSeparableConv(nn.Sequential):
    """A k x k depthwise conv (one filter per channel) followed by a 1x1 pointwise conv.

    Costs about ``1/out + 1/k^2`` of a standard conv's parameters and MACs.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, kernel_size, stride, padding, dilation,
            groups=in_channels, bias=False,
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)


class SpatiallySeparableConv(nn.Sequential):
    """A k x 1 conv followed by a 1 x k conv: the receptive field of k x k for 2k weights."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.vertical = nn.Conv2d(
            in_channels, out_channels, (kernel_size, 1), (stride, 1), (padding, 0), (dilation, 1),
            bias=False,
        )
        self.horizontal = nn.Conv2d(
            out_channels, out_channels, (1, kernel_size), (1, stride), (0, padding), (1, dilation),
            bias=bias,
        )


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# ---------------------------------------------------------------- size arithmetic: one home each

def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """The padding that keeps the map size at stride 1 (odd kernels)."""
    return dilation * (kernel_size - 1) // 2


def transpose_output_padding(stride: int) -> int:
    """The output padding that makes a "same"-padded transpose conv upsample exactly x``stride``."""
    return stride - 1 if stride > 1 else 0


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int, dilation: int,
                     transpose: bool = False) -> int:
    """Spatial size after one conv along one axis (PyTorch's formula)."""
    span = dilation * (kernel_size - 1)
    if transpose:
        return (size - 1) * stride - 2 * padding + span + 1 + transpose_output_padding(stride)
    return (size + 2 * padding - span - 1) // stride + 1


# ---------------------------------------------------------------- rules: what cannot be built


def layer_errors(conv_type: str, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 padding: int, dilation: int) -> list[tuple[str, str]]:
    """What makes one conv impossible to build, as (field, reason) pairs; empty when it is fine.

    The one place these rules live: ``create_conv2d`` raises the first, ``validate_spec``
    raises it with the block and layer named.
    """
    if conv_type not in CONV_TYPES:
        return [("conv_type", f"unknown conv type {conv_type!r}; expected one of {', '.join(CONV_TYPES)}")]
    errors = [(name, f"must be a positive integer, got {value!r}")
              for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                                  ("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation))
              if not _positive_int(value)]
    if not (isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0):
        errors.append(("padding", f"must be a non-negative integer, got {padding!r}"))
    if conv_type == "pointwise" and kernel_size != 1:
        errors.append(("kernel_size", f"a pointwise conv has kernel size 1, got {kernel_size!r}"))
    if conv_type == "dilated" and _positive_int(dilation) and dilation < 2:
        errors.append(("dilation", f"conv type 'dilated' needs dilation >= 2, got {dilation}"))
    return errors


def norm_error(normalization: str, number_of_groups: int | None = None,
               channels: int | None = None) -> tuple[str, str] | None:
    """Why a normalization cannot be used (for ``channels``, when given), as (field, reason)."""
    if normalization not in NORMALIZATIONS:
        return "normalization", (f"unknown normalization {normalization!r}; "
                                 f"expected one of {', '.join(NORMALIZATIONS)}")
    if normalization != "group":
        return None
    if not _positive_int(number_of_groups):
        return "number_of_groups", f"normalization 'group' needs a positive number_of_groups, got {number_of_groups!r}"
    if channels is not None and channels % number_of_groups:
        return "out_channels", f"{channels} channels are not divisible by number_of_groups={number_of_groups}"
    return None


@dataclass
class BlockFault:
    """The first reason a block cannot be built: the field (None: the lists as a whole) and the
    layer (None: the whole block)."""

    field: str | None
    layer: int | None
    reason: str


def block_fault(layers: dict[str, Sequence], in_channels: int, normalization: str = "batch",
                number_of_groups: int | None = None, bare_last: bool = False) -> BlockFault | None:
    """Check a block given as parallel per-layer lists (``conv_type`` first, then out channels,
    kernel, stride, padding, dilation, under the caller's names): the one home of the block
    rules, shared by ``get_conv_block`` and ``validate_spec``, which word the place differently.
    ``bare_last``: the last conv has no norm (the network's logits)."""
    names = list(layers)
    for name, values in layers.items():
        if not isinstance(values, (list, tuple)):
            return BlockFault(name, None, f"must be a list with one entry per layer, got {values!r}")
    lengths = {name: len(values) for name, values in layers.items()}
    if len(set(lengths.values())) != 1:
        detail = ", ".join(f"{name}={n}" for name, n in lengths.items())
        return BlockFault(None, None, f"lists must have the same length; got {detail}")
    if lengths[names[0]] == 0:
        return BlockFault(None, None, "a block needs at least one layer")
    fault = norm_error(normalization, number_of_groups)
    if fault:
        return BlockFault(fault[0], None, fault[1])
    channels, n = in_channels, lengths[names[0]]
    for i, (kind, out, k, s, p, d) in enumerate(zip(*layers.values())):
        errors = layer_errors(kind, channels, out, k, s, p, d)
        if not errors and not (bare_last and i == n - 1):
            fault = norm_error(normalization, number_of_groups, out)
            errors = [fault] if fault else []
        if errors:
            return BlockFault(errors[0][0], i, errors[0][1])
        channels = out
    return None


def create_conv2d(
    conv_type: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | None = None,
    dilation: int = 1,
    bias: bool = False,
) -> nn.Module:
    """One convolution of the named kind; ``padding=None`` keeps the size ("same") at stride 1."""
    if padding is None and _positive_int(dilation) and _positive_int(kernel_size):
        padding = same_padding(kernel_size, dilation)
    errors = layer_errors(conv_type, in_channels, out_channels, kernel_size, stride, padding, dilation)
    if errors:
        field, reason = errors[0]
        raise ConfigError(f"{field}: {reason}")

    if conv_type == "depthwise":
        return DepthwiseSeparableConv(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
    if conv_type == "spatially_separable":
        return SpatiallySeparableConv(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
    if conv_type == "transpose":
        return nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride, padding, transpose_output_padding(stride),
            dilation=dilation, bias=bias,
        )
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias)


def norm_layer(normalization: str, channels: int, number_of_groups: int | None = None) -> nn.Module:
    """Batch, group or layer norm (layer norm = one group over C, H, W), or none."""
    fault = norm_error(normalization, number_of_groups, channels)
    if fault:
        raise ConfigError(f"{fault[0]}: {fault[1]}")
    if normalization == "batch":
        return nn.BatchNorm2d(channels)
    if normalization == "group":
        return nn.GroupNorm(number_of_groups, channels)
    if normalization == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def conv_norm_act(
    conv_type: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | None = None,
    dilation: int = 1,
    activation_fn: Callable[[], nn.Module] | None = nn.ReLU,
    normalization: str = "batch",
    number_of_groups: int | None = None,
) -> nn.Sequential:
    """conv -> norm -> activation, the unit every block is made of."""
    layers = [create_conv2d(conv_type, in_channels, out_channels, kernel_size, stride, padding, dilation)]
    if normalization != "none":
        layers.append(norm_layer(normalization, out_channels, number_of_groups))
    if activation_fn is not None:
        layers.append(activation_fn())
    return nn.Sequential(*layers)


def get_conv_block(
    conv_type: Sequence[str],
    in_channels: int,
    out_channels_list: Sequence[int],
    kernel_size_list: Sequence[int],
    stride_list: Sequence[int],
    padding_list: Sequence[int],
    dilation_list: Sequence[int],
    activation_fn: Callable[[], nn.Module] = nn.ReLU,
    normalization: str = "batch",
    number_of_groups: int | None = None,
    last_layer: bool = False,
) -> nn.Sequential:
    """A block of convs, each followed by norm + activation.

    With ``last_layer=True`` the final conv is left bare (no norm, no activation) because it
    produces the network's logits; like the course's reference, convs carry no bias.
    """
    lists = {
        "conv_type": conv_type,
        "out_channels_list": out_channels_list,
        "kernel_size_list": kernel_size_list,
        "stride_list": stride_list,
        "padding_list": padding_list,
        "dilation_list": dilation_list,
    }
    fault = block_fault(lists, in_channels, normalization, number_of_groups, bare_last=last_layer)
    if fault:
        where = "get_conv_block" if fault.layer is None else f"get_conv_block layer {fault.layer}"
        raise ConfigError(f"{where}: {fault.field + ': ' if fault.field else ''}{fault.reason}")

    layers: list[nn.Module] = []
    channels = in_channels
    n = len(conv_type)
    for i, (kind, out, k, s, p, d) in enumerate(zip(*lists.values())):
        if last_layer and i == n - 1:
            layers.append(create_conv2d(kind, channels, out, k, s, p, d))
        else:
            layers.append(conv_norm_act(kind, channels, out, k, s, p, d, activation_fn,
                                        normalization, number_of_groups))
        channels = out
    return nn.Sequential(*layers)


class _MeanKeepingLayout(torch.autograd.Function):
    """Spatial mean to (N, C, 1, 1) whose gradient comes back in the input's memory format."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        ctx.channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        return x.mean((2, 3), keepdim=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        n, c, h, w = ctx.shape
        layout = torch.channels_last if ctx.channels_last else torch.contiguous_format
        return (grad / (h * w)).expand(n, c, h, w).contiguous(memory_format=layout)


class GlobalAvgPool(nn.AdaptiveAvgPool2d):
    """``AdaptiveAvgPool2d(1)`` whose backward keeps a channels_last net channels_last.

    torch hands the gradient of a (N, C, 1, 1) pooled output back as an NCHW tensor even when
    the pooled maps are channels_last; every ReLU, add and conv backward of the last block then
    mixes the two layouts, which takes a slow path on the CPU (measured in the project's lab).
    The values, and the state dict (none), are those of ``AdaptiveAvgPool2d(1)``; outside
    training it is that module.
    """

    def __init__(self) -> None:
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and x.dim() == 4 and torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)  # what tracing and export see: torch's own op
        return _MeanKeepingLayout.apply(x)


class Residual(nn.Module):
    """``x + body(x)``: lets deeper blocks train fast; the body must keep the shape."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
