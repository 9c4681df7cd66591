"""Networks shaped C1 C2 C3 C4 O, described by small specs and built with ``get_conv_block``.

A model is data first (``NetSpec``) so that a config file can name or describe one and
every impossible spec is rejected, naming the field, before any tensor is made.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Callable

from torch import nn

from .blocks import (ACTIVATIONS, GlobalAvgPool, Residual, _positive_int, block_fault, conv_output_size,
                     get_conv_block, norm_error, same_padding)
from .errors import ConfigError

PARAM_BUDGET = 200_000


def within_budget(params: int, budget: int) -> bool:
    """The assignment's parameter rule: strictly fewer than the budget. Training and the
    check both use it, so a net that trains is a net that passes."""
    return params < budget


LAYER_FIELDS = ("conv_type", "out_channels", "kernel_size", "stride", "padding", "dilation")


@dataclass
class BlockSpec:
    """One block: parallel lists, one entry per conv layer (as ``get_conv_block`` takes them).

    ``residual=[start, stop]`` wraps layers ``start..stop-1`` in a skip connection; they
    must keep the shape (stride 1, same channels, same size). A list of such pairs, in order
    and not overlapping (``[[1, 3], [3, 5]]``), stacks several skips in one block.
    """

    conv_type: list[str]
    out_channels: list[int]
    kernel_size: list[int]
    stride: list[int]
    padding: list[int]
    dilation: list[int]
    residual: list[int] | list[list[int]] | None = None

    def residual_ranges(self) -> list[tuple[int, int]]:
        """The skip connections as (start, stop) pairs, whichever form ``residual`` was given in."""
        r = self.residual
        if r is None:
            return []
        if not isinstance(r, (list, tuple)):
            return [(r,)]  # malformed: validate_spec names it
        if r and all(isinstance(x, (list, tuple)) for x in r):
            return [tuple(x) for x in r]
        return [tuple(r)]


@dataclass
class NetSpec:
    blocks: list[BlockSpec]
    in_channels: int = 3
    num_classes: int = 10
    normalization: str = "batch"
    number_of_groups: int | None = None
    activation: str = "relu"  # a name in blocks.ACTIVATIONS, after every conv but the head

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NetSpec":
        """``base: NAME`` starts from a registered net; the other fields given replace its own."""
        data = dict(data)
        if "base" in data:
            data = resolve_spec(data.pop("base")).to_dict() | data
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"model: unknown field(s) {sorted(unknown)}")
        blocks = []
        for i, block in enumerate(data.pop("blocks", [])):
            unknown = set(block) - set(BlockSpec.__dataclass_fields__)
            if unknown:
                raise ConfigError(f"model.blocks[{i}]: unknown field(s) {sorted(unknown)}")
            try:
                blocks.append(BlockSpec(**block))
            except TypeError as exc:
                raise ConfigError(f"model.blocks[{i}]: {exc}") from None
        return cls(blocks=blocks, **data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _block(*layers: tuple, residual: list[int] | None = None) -> BlockSpec:
    """Layers as (type, out, kernel, stride, padding, dilation) tuples, read row by row."""
    columns = [list(c) for c in zip(*layers)]
    return BlockSpec(*columns, residual=residual)


S, DW, DIL = "standard", "depthwise", "dilated"


def reference_spec() -> NetSpec:
    """The course's reference layout (185,346 parameters)."""
    return NetSpec(blocks=[
        _block((S, 32, 3, 1, 1, 1), (S, 32, 3, 1, 1, 1), (S, 32, 3, 2, 1, 1)),
        _block((S, 38, 3, 1, 1, 1), (DIL, 38, 3, 1, 2, 2), (S, 38, 3, 2, 1, 1)),
        _block((DW, 40, 3, 1, 1, 1), (S, 40, 3, 1, 1, 1), (S, 40, 3, 2, 1, 1)),
        _block((S, 64, 3, 1, 1, 1), (S, 64, 3, 1, 1, 1), (S, 64, 3, 1, 1, 1)),
    ])


def assignment9_spec() -> NetSpec:
    """The reference's rules, laid out for speed on a CPU (the fast recipe trains it).

    C1 downsamples at once (little work at 32x32); the dilated conv sits inside C2's residual
    pair; depthwise-separable convs widen C3/C4 cheaply. Every stride-2 conv is a standard
    one, because on a CPU the backward pass of a strided depthwise or dilated conv costs more
    than a standard conv with more MACs (measured in the project's lab).
    """
    return NetSpec(blocks=[
        _block((S, 32, 3, 2, 1, 1)),
        _block((S, 48, 3, 1, 1, 1), (DIL, 48, 3, 1, 2, 2), (S, 80, 3, 2, 1, 1), residual=[1, 2]),
        _block((DW, 80, 3, 1, 1, 1), (DW, 80, 3, 1, 1, 1), (S, 96, 3, 2, 1, 1), residual=[1, 2]),
        _block((DW, 128, 3, 1, 1, 1), (DW, 128, 3, 1, 1, 1), residual=[1, 2]),
    ])


def stem8_spec(activation: str = "relu") -> NetSpec:
    """assignment9's layout with more of its work where the image's detail is: a 3->16 conv at
    full resolution before C1's stride-2 conv (the stem), and C3 closing on a dilated conv
    instead of a stride-2 one, so that C4 works at 8x8 as CIFAR ResNets end. The same rules
    hold; the MACs grow, the parameters barely. The default net.
    """
    return NetSpec(activation=activation, blocks=[
        _block((S, 16, 3, 1, 1, 1), (S, 32, 3, 2, 1, 1)),
        _block((S, 48, 3, 1, 1, 1), (DIL, 48, 3, 1, 2, 2), (S, 80, 3, 2, 1, 1), residual=[1, 2]),
        _block((DW, 80, 3, 1, 1, 1), (DW, 80, 3, 1, 1, 1), (DIL, 96, 3, 1, 2, 2), residual=[1, 2]),
        _block((DW, 128, 3, 1, 1, 1), (DW, 128, 3, 1, 1, 1), residual=[1, 2]),
    ])


def stem8_hardswish_spec() -> NetSpec:
    """stem8 with hardswish after every conv: best.yaml's net (same parameters, a little more
    time per epoch than ReLU, more accurate over long schedules)."""
    return stem8_spec("hardswish")


# the architectures, by name: `--model NAME`, create_model(NAME), a config's `model: NAME`
MODELS: dict[str, Callable[[], NetSpec]] = {
    "assignment9": assignment9_spec,
    "reference": reference_spec,
    "stem8": stem8_spec,
    "stem8_hardswish": stem8_hardswish_spec,
}


def resolve_spec(model: str | dict | NetSpec) -> NetSpec:
    """The one place a spec is found: an architecture name, a dict (YAML, a checkpoint), or a NetSpec."""
    if isinstance(model, NetSpec):
        return model
    if isinstance(model, dict):
        return NetSpec.from_dict(model)
    if isinstance(model, str) and model in MODELS:
        return MODELS[model]()
    raise ConfigError(f"unknown model {model!r}; known models: {', '.join(sorted(MODELS))}")
