"""What a unit of a layer sees: its theoretical receptive field (the square that ``summary``'s
arithmetic gives) and its effective one (Luo et al., NeurIPS 2016: the absolute gradient of the
unit with respect to the input pixels, where most of that square's influence really lies).

The effective field is measured with autograd on any net, random or trained, in eval mode and
fp32: the unit's output summed over its channels is differentiated with respect to the input,
and the gradient's magnitude, summed over the input's channels, is averaged over the images.
Its size is stated as the smallest squares centred on the unit that hold 50 % and 95 % of that
mass. A square clipped by the image is said so: the net is convolutional up to its pooling, so a
larger input (a mosaic of images) shows a deep unit's field whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .summary import LayerInfo, summarize

SHARES = (0.5, 0.95)  # the effective field's size: the squares holding these shares of the gradient's mass


@dataclass
class Square:
    """A square of the input, in pixel rows and columns, ends included, clipped to the input."""

    top: int
    left: int
    bottom: int
    right: int
    clipped: bool       # the image cut the square short

    @property
    def side(self) -> int:
        return max(self.bottom - self.top, self.right - self.left) + 1


@dataclass
class UnitField:
    """One unit's two fields: the theoretical square and the effective gradient map."""

    layer: str
    unit: tuple[int, int]            # (row, col) on the layer's map
    theoretical_side: int            # the layer's receptive field, as summary gives it
    square: Square                   # that field around this unit, on this input
    gradient: np.ndarray             # (H, W): mean |d unit / d pixel|, summed over the input's channels
    sides: dict[float, int]          # share of the gradient's mass -> side of the smallest centred square

    @property
    def ratio(self) -> float:
        """How much of the theoretical side the 95 % square spans."""
        return self.sides[SHARES[-1]] / self.theoretical_side

    def line(self) -> str:
        where = "clipped by the input" if self.square.clipped else "whole on the input"
        shares = ", ".join(f"{int(100 * q)} % within {s}" for q, s in self.sides.items())
        return (f"{self.layer} unit {self.unit}: theoretical field {self.theoretical_side} px ({where}, "
                f"{self.square.side} px shown); effective: {shares} px; 95 % side / theoretical "
                f"{self.ratio:.2f}")


def layer_infos(net: nn.Module, input_size: int, in_channels: int = 3) -> dict[str, LayerInfo]:
    """The summary's rows of the layers a field can be measured at: convs whose field it follows."""
    rows = summarize(net, input_size, in_channels).layers
    return {r.name: r for r in rows if r.kind == "Conv2d" and r.rf is not None and r.start is not None}


def block_ends(net: nn.Module, input_size: int = 32) -> list[str]:
    """The last conv of each block (c1, c2, ...): the layers shown unless one is named."""
    ends: dict[str, str] = {}
    for name in layer_infos(net, input_size):
        ends[name.split(".")[0]] = name
    return list(ends.values())


def resolve_layer(net: nn.Module, layer: str, input_size: int) -> str:
    """A layer as named: a conv (``c4.1.body.0.0.pointwise``) or a block (``c4``: its last conv)."""
    infos = layer_infos(net, input_size)
    if layer in infos:
        return layer
    ends = {name.split(".")[0]: name for name in block_ends(net, input_size)}
    if layer in ends:
        return ends[layer]
    raise ConfigError(f"no conv layer {layer!r} whose field can be followed; blocks: {', '.join(ends)}; "
                      f"convs: {', '.join(infos)}")


def square_of(info: LayerInfo, unit: tuple[int, int], size: tuple[int, int]) -> Square:
    """The theoretical field of ``unit`` on an input of ``size`` (rows, cols), clipped to it."""
    (cy, cx), (ry, rx) = info.centre(*unit), info.rf
    top, left = cy - (ry - 1) / 2, cx - (rx - 1) / 2
    bottom, right = cy + (ry - 1) / 2, cx + (rx - 1) / 2
    inside = (max(0, int(np.ceil(top))), max(0, int(np.ceil(left))),
              min(size[0] - 1, int(np.floor(bottom))), min(size[1] - 1, int(np.floor(right))))
    return Square(*inside, clipped=(top < 0 or left < 0 or bottom > size[0] - 1 or right > size[1] - 1))


def mass_sides(gradient: np.ndarray, centre: tuple[float, float]) -> dict[float, int]:
    """The side of the smallest square centred on ``centre`` holding each of ``SHARES`` of the mass."""
    rows, cols = np.indices(gradient.shape)
    reach = np.maximum(np.abs(rows - centre[0]), np.abs(cols - centre[1])).ravel()  # half-side to each pixel
    order = np.argsort(reach, kind="stable")
    held = np.cumsum(gradient.ravel()[order]) / max(gradient.sum(), np.finfo(float).tiny)
    return {q: int(round(2 * reach[order][np.searchsorted(held, q - 1e-9)] + 1)) for q in SHARES}


def effective_fields(net: nn.Module, images: torch.Tensor, layers: list[str],
                     units: dict[str, tuple[int, int]] | None = None) -> list[UnitField]:
    """Each layer's field at its unit (default: the centre of its map) on ``images`` (N, C, H, W,
    normalized as the net was trained): one forward pass, one backward pass per layer."""
    net = net.eval()
    size = tuple(images.shape[-2:])
    infos = layer_infos(net, size[0], images.shape[1])
    modules = dict(net.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    handles = [modules[name].register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
               for name in layers]
    x = images.detach().float().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            net(x)
            fields = []
            for i, name in enumerate(layers):
                out = outputs[name]
                unit = (units or {}).get(name, (out.shape[-2] // 2, out.shape[-1] // 2))
                if not (0 <= unit[0] < out.shape[-2] and 0 <= unit[1] < out.shape[-1]):
                    raise ConfigError(f"{name}'s map is {out.shape[-2]}x{out.shape[-1]}: no unit at {unit}")
                (grad,) = torch.autograd.grad(out[:, :, unit[0], unit[1]].sum(), x, retain_graph=i < len(layers) - 1)
                gradient = grad.abs().sum(1).mean(0).numpy().astype(np.float64)
                info = infos[name]
                fields.append(UnitField(name, unit, int(info.rf[0]), square_of(info, unit, size), gradient,
                                        mass_sides(gradient, info.centre(*unit))))
    finally:
        for h in handles:
            h.remove()
    return fields


def mosaic(images: np.ndarray, tiles: int) -> np.ndarray:
    """Images (N, H, W, C) tiled ``tiles`` x ``tiles`` into N larger ones, each from the next
    tiles**2 images in turn: an input on which a deep unit's field is not cut by the border."""
    n, h, w, c = images.shape
    picked = images[np.arange(n * tiles * tiles) % n].reshape(n, tiles, tiles, h, w, c)
    return picked.transpose(0, 1, 3, 2, 4, 5).reshape(n, tiles * h, tiles * w, c)


def tiles_for(net: nn.Module, input_size: int) -> int:
    """How many tiles a side a mosaic needs for the deepest measurable field to fit whole at its centre."""
    widest = max((info.rf[0] for info in layer_infos(net, input_size).values()), default=1)
    tiles = 1
    while tiles * input_size < widest + 2 * input_size // 4:  # the field, and a margin around it
        tiles += 2  # odd, so the centre unit sits in the middle tile
    return tiles
