"""Nets as data: ``NetSpec`` (blocks of per-layer lists, as ``get_conv_block`` takes them) and the
architectures by name (``MODELS``), with no tensor made, so that a config can name or describe a
net and the command line can list them without loading torch (``models.build_net`` builds one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..errors import ConfigError

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


def block_spec(*layers: tuple, residual: list[int] | None = None) -> BlockSpec:
    """Layers as (type, out, kernel, stride, padding, dilation) tuples, read row by row."""
    columns = [list(c) for c in zip(*layers)]
    return BlockSpec(*columns, residual=residual)


S, DW, DIL = "standard", "depthwise", "dilated"


def reference_spec() -> NetSpec:
    """The course's reference layout (185,346 parameters)."""
    return NetSpec(blocks=[
        block_spec((S, 32, 3, 1, 1, 1), (S, 32, 3, 1, 1, 1), (S, 32, 3, 2, 1, 1)),
        block_spec((S, 38, 3, 1, 1, 1), (DIL, 38, 3, 1, 2, 2), (S, 38, 3, 2, 1, 1)),
        block_spec((DW, 40, 3, 1, 1, 1), (S, 40, 3, 1, 1, 1), (S, 40, 3, 2, 1, 1)),
        block_spec((S, 64, 3, 1, 1, 1), (S, 64, 3, 1, 1, 1), (S, 64, 3, 1, 1, 1)),
    ])


def assignment9_spec() -> NetSpec:
    """The reference's rules, laid out for speed on a CPU (the fast recipe trains it).

    C1 downsamples at once (little work at 32x32); the dilated conv sits inside C2's residual
    pair; depthwise-separable convs widen C3/C4 cheaply. Every stride-2 conv is a standard
    one, because on a CPU the backward pass of a strided depthwise or dilated conv costs more
    than a standard conv with more MACs (measured in the project's lab).
    """
    return NetSpec(blocks=[
        block_spec((S, 32, 3, 2, 1, 1)),
        block_spec((S, 48, 3, 1, 1, 1), (DIL, 48, 3, 1, 2, 2), (S, 80, 3, 2, 1, 1), residual=[1, 2]),
        block_spec((DW, 80, 3, 1, 1, 1), (DW, 80, 3, 1, 1, 1), (S, 96, 3, 2, 1, 1), residual=[1, 2]),
        block_spec((DW, 128, 3, 1, 1, 1), (DW, 128, 3, 1, 1, 1), residual=[1, 2]),
    ])


def stem8_spec(activation: str = "relu") -> NetSpec:
    """assignment9's layout with more of its work where the image's detail is: a 3->16 conv at
    full resolution before C1's stride-2 conv (the stem), and C3 closing on a dilated conv
    instead of a stride-2 one, so that C4 works at 8x8 as CIFAR ResNets end. The same rules
    hold; the MACs grow, the parameters barely. The default net.
    """
    return NetSpec(activation=activation, blocks=[
        block_spec((S, 16, 3, 1, 1, 1), (S, 32, 3, 2, 1, 1)),
        block_spec((S, 48, 3, 1, 1, 1), (DIL, 48, 3, 1, 2, 2), (S, 80, 3, 2, 1, 1), residual=[1, 2]),
        block_spec((DW, 80, 3, 1, 1, 1), (DW, 80, 3, 1, 1, 1), (DIL, 96, 3, 1, 2, 2), residual=[1, 2]),
        block_spec((DW, 128, 3, 1, 1, 1), (DW, 128, 3, 1, 1, 1), residual=[1, 2]),
    ])


def stem8_hardswish_spec() -> NetSpec:
    """stem8 with hardswish after every conv: the accurate recipe's net (same parameters, a little more
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
