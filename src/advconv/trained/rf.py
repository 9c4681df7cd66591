"""``advconv rf``: a net's receptive fields, theoretical and effective, on images, with a figure.

A trained net is measured beside the same net at random initialisation (seeded), so the
difference training makes shows; an architecture by name is measured at random initialisation.
The input is a given image at the net's size (deep fields are clipped by it, and said so), or a
mosaic of test images large enough that every field fits whole (``receptive.tiles_for``), or,
with no labelled images at hand, Gaussian noise of that size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.datasets import ChannelStats, channel_stats, decode_image, load_dataset
from ..nets.models import build_net
from ..nets.receptive import UnitField, effective_fields, layer_infos, mosaic, resolve_layer, tiles_for
from ..nets.specs import resolve_spec
from .evaluation import labelled_at_hand
from .hub import TrainedModel, load_model, names_trained_weights, resolve_with_size
from .inference import preprocess
from .plots import plot_field_growth, plot_unit_field

IMAGES = 64  # images averaged over: enough for a smooth map, and fast


@dataclass
class FieldsReport:
    model: str
    measured_on: str                                  # the input, in words
    fields: dict[str, list[UnitField]]                # "random" and, for a trained net, "trained"
    paths: list[Path] = field(default_factory=list)   # the figure

    def lines(self) -> list[str]:
        weights = list(self.fields)
        if len(self.fields[weights[0]]) == 1:
            return [f"{self.model}, {self.measured_on}:"] + [f"{w}: {fs[0].line()}" for w, fs in self.fields.items()]
        header = f"{'layer':<26}{'map unit':>10}{'theoretical':>13}" + "".join(f"{w + ' 50%/95%':>18}" for w in weights)
        rows = [f"{self.model}, {self.measured_on}; sides in input pixels", header]
        for i, first in enumerate(self.fields[weights[0]]):
            cells = "".join(f"{f'{fs[i].sides[0.5]} / {fs[i].sides[0.95]}':>18}" for fs in self.fields.values())
            rows.append(f"{first.layer:<26}{str(first.unit):>10}{first.theoretical_side:>13}{cells}")
        return rows


def _net(model: Any) -> tuple[nn.Module, int, TrainedModel | None]:
    """The net, its input size and, when trained, the trained model (its record and data)."""
    trained = model if isinstance(model, TrainedModel) else load_model(model) if names_trained_weights(model) else None
    if trained is not None:
        return trained.net, trained.record.input_size, trained
    return (*resolve_with_size(model), None)


def _labelled(trained: TrainedModel | None, data: str | Path | None, cache_dir: str | Path | None) -> np.ndarray | None:
    """Test images to measure on: of ``data``, else of the data the model was trained on when at hand."""
    if trained is not None:
        found = labelled_at_hand(trained, data, cache_dir)
        return None if found is None else found.images
    return None if data is None else load_dataset(data, cache_dir)[1].images


def receptive_fields(model: Any, layer: str | None = None, at: tuple[int, int] | None = None,
                     image: str | Path | None = None, images: int = IMAGES, data: str | Path | None = None,
                     output: str | Path | None = None, cache_dir: str | Path | None = None,
                     seed: int = 0) -> FieldsReport:
    """The fields of one unit of ``layer`` (a conv, or a block: its last conv; ``at``: the unit's
    (row, col) on its map, default its centre), or with no layer of every conv layer of the net.
    ``output``: the figure (None: none)."""
    torch.manual_seed(seed)  # random weights: the same for an architecture's name and a trained net's
    net, size, trained = _net(model)
    stats: ChannelStats | None = trained.record.stats if trained is not None else None
    if image is not None:
        pixels = np.array(decode_image(Path(image), str(image), size))[None]
        measured_on = f"on {Path(image).name} at {size}x{size} (a deep field is clipped by the image)"
    else:
        tiles, labelled = tiles_for(net, size), _labelled(trained, data, cache_dir)
        if labelled is not None:
            picked = labelled[np.linspace(0, len(labelled) - 1, images * tiles * tiles).astype(int)]
            pixels = mosaic(picked, tiles)[:images]
            measured_on = (f"mean of {len(pixels)} mosaics of {tiles}x{tiles} test images "
                           f"({tiles * size}x{tiles * size} px, so that no field is clipped)")
        else:
            pixels = None
            measured_on = (f"mean over {images} noise images of {tiles * size}x{tiles * size} px "
                           "(no labelled images at hand)")
    if pixels is not None:
        x = preprocess(pixels, stats or channel_stats(pixels))
    else:
        x = torch.randn(images, 3, tiles * size, tiles * size, generator=torch.Generator().manual_seed(seed))
    names = [resolve_layer(net, layer, size)] if layer else list(layer_infos(net, size))
    units = {names[0]: tuple(at)} if layer and at is not None else None
    if trained is not None:
        torch.manual_seed(seed)
        fresh = build_net(resolve_spec(trained.record.spec), size)
        fields = {"random": effective_fields(fresh, x, names, units), "trained": effective_fields(net, x, names, units)}
    else:
        fields = {"as given" if isinstance(model, nn.Module) else "random": effective_fields(net, x, names, units)}
    report = FieldsReport(str(model), measured_on, fields)
    if output is not None:
        shown = pixels.mean(0).astype(np.uint8) if pixels is not None else np.full((*x.shape[-2:], 3), 128, np.uint8)
        last = list(fields)[-1]
        title = f"{report.model} ({last} weights), {measured_on}"
        if layer:
            report.paths.append(plot_unit_field(shown, fields[last][0], output, title))
        else:
            theoretical = [f.theoretical_side for f in fields[last]]
            report.paths.append(plot_field_growth(names, theoretical, {w: [f.sides[0.95] for f in fs]
                                                                        for w, fs in fields.items()}, output, title))
    return report
