"""Networks shaped C1 C2 C3 C4 O, described by small specs and built with ``get_conv_block``.

A model is data first (``specs.NetSpec``), so every impossible spec is rejected here, naming
the field, before any tensor is made.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..errors import ConfigError
from .blocks import (ACTIVATIONS, GlobalAvgPool, Residual, _positive_int, block_fault, conv_output_size, get_conv_block,
                     norm_error, same_padding)
from .specs import LAYER_FIELDS, BlockSpec, NetSpec


def within_budget(params: int, budget: int) -> bool:
    """The assignment's parameter rule: strictly fewer than the budget. Training and the
    check both use it, so a net that trains is a net that passes."""
    return params < budget


def validate_spec(spec: NetSpec, input_size: int = 32, max_params: int | None = None) -> list[int]:
    """Reject what cannot build or run, naming the field; returns the map size after each block."""
    if not spec.blocks:
        raise ConfigError("model.blocks: a network needs at least one block")
    fault = norm_error(spec.normalization, spec.number_of_groups)
    if fault:
        raise ConfigError(f"model.{fault[0]}: {fault[1]}")
    for name in ("in_channels", "num_classes"):
        if not _positive_int(getattr(spec, name)):
            raise ConfigError(f"model.{name} must be a positive integer, got {getattr(spec, name)!r}")
    if spec.activation not in ACTIVATIONS:
        raise ConfigError(f"model.activation: unknown activation {spec.activation!r}; "
                         f"expected one of {', '.join(ACTIVATIONS)}")

    size, channels, sizes = input_size, spec.in_channels, []
    for b, block in enumerate(spec.blocks):
        where = f"model.blocks[{b}]"
        lists = {name: getattr(block, name) for name in LAYER_FIELDS}
        fault = block_fault(lists, channels, spec.normalization, spec.number_of_groups)
        if fault:
            at = f"{where}.{fault.field}[{fault.layer}]" if fault.layer is not None else \
                f"{where}.{fault.field}" if fault.field else where
            raise ConfigError(f"{at}: {fault.reason}")
        for i, (kind, out, k, s, p, d) in enumerate(zip(*lists.values())):
            new_size = conv_output_size(size, k, s, p, d, transpose=kind == "transpose")
            if new_size < 1:
                raise ConfigError(
                    f"{where}, layer {i}: kernel_size={k}, stride={s}, padding={p}, dilation={d} shrink the "
                    f"{size}x{size} feature map below 1x1 (to {new_size}x{new_size}); "
                    "lower the stride/dilation or raise the padding"
                )
            size, channels = new_size, out
        if block.residual is not None:
            _validate_residual(block, where)
        sizes.append(size)
    if max_params is not None:
        params = sum(p.numel() for p in build_net(spec, input_size, check=False).parameters())
        if not within_budget(params, max_params):
            raise ConfigError(f"model: {params:,} parameters; the budget allows fewer than {max_params:,}")
    return sizes


def _validate_residual(block: BlockSpec, where: str) -> None:
    n = len(block.conv_type)
    previous_stop = 1
    for r in block.residual_ranges():
        if not (len(r) == 2 and all(isinstance(x, int) for x in r) and previous_stop <= r[0] < r[1] <= n):
            raise ConfigError(f"{where}.residual must be [start, stop] with 0 < start < stop <= {n}, or a "
                             f"list of such pairs in order without overlap; got {block.residual!r}")
        for i in range(r[0], r[1]):
            if (block.stride[i] != 1 or block.out_channels[i] != block.out_channels[r[0] - 1]
                    or block.padding[i] != same_padding(block.kernel_size[i], block.dilation[i])
                    or block.conv_type[i] == "transpose"):
                raise ConfigError(f"{where}.residual: layer {i} changes the shape; layers inside a "
                                 "skip connection need stride 1, 'same' padding and unchanged channels")
        previous_stop = r[1]


def build_net(spec: NetSpec, input_size: int = 32, check: bool = True) -> nn.Sequential:
    """C1..Cn blocks, global average pooling, then a 1x1 conv to the classes."""
    if check:
        validate_spec(spec, input_size)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = spec.in_channels
    for b, block in enumerate(spec.blocks):
        body = get_conv_block(
            block.conv_type, channels, block.out_channels, block.kernel_size, block.stride,
            block.padding, block.dilation, activation_fn=ACTIVATIONS[spec.activation],
            normalization=spec.normalization,
            number_of_groups=spec.number_of_groups,
        )
        if block.residual is not None:
            parts, wrapped, done = list(body), [], 0
            for start, stop in block.residual_ranges():
                wrapped += parts[done:start] + [Residual(nn.Sequential(*parts[start:stop]))]
                done = stop
            body = nn.Sequential(*wrapped, *parts[done:])
        layers[f"c{b + 1}"] = body
        channels = block.out_channels[-1]
    layers["gap"] = GlobalAvgPool()
    layers["head"] = nn.Conv2d(channels, spec.num_classes, 1, bias=False)
    layers["flatten"] = nn.Flatten()
    return nn.Sequential(layers)
