"""Fine-tuning: a run that starts from trained weights (``pretrained``) instead of random ones.

The net is the starting weights' own, its class count left to follow the new data; every
tensor that fits is loaded, and the classifier starts fresh unless the new data has the very
classes it was trained on (``hub.load_matching``). A ``model`` given beside it must name that
same net: one net per run, with no second name to keep in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SETTINGS
from ..errors import AdvconvError, ConfigError
from ..nets.specs import resolve_spec
from ..trained.hub import Loaded, TrainedModel, load_matching, load_model

MODEL_DEFAULT = SETTINGS["model"].default  # a model left at its default yields to the starting weights


@dataclass
class StartingPoint:
    source: str             # as the config names it
    trained: TrainedModel

    @property
    def spec(self) -> dict[str, Any]:
        """The net to train: the starting weights' own, its class count left to the data."""
        return without_head(self.trained.record.spec)

    def load_into(self, net, classes: tuple[str, ...]) -> Loaded:
        """The weights into ``net``, which will learn ``classes``: the classifier is kept only
        for the very classes it was trained on, in their order."""
        return load_matching(net, self.trained.net.state_dict(), tuple(classes) == self.trained.record.classes)


def starting_point(source: str, image_size: int) -> StartingPoint:
    """The trained model ``pretrained`` names, or one line naming what to fix."""
    try:
        trained = load_model(source)
    except AdvconvError as exc:
        raise ConfigError(f"pretrained: {exc}") from None
    size = trained.record.input_size
    if size != image_size:
        raise ConfigError(f"pretrained: {source} was trained on {size}-pixel images and this run's data.image_size "
                          f"is {image_size}: set --image_size {size}, or start from weights trained at {image_size}")
    return StartingPoint(str(source), trained)


def net_for(start: StartingPoint, model: Any) -> dict[str, Any]:
    """The ``model`` of a run that starts from ``start``: its spec. A model named beside it must be
    the same net (the head aside); where it is not, the first difference is named."""
    if model == MODEL_DEFAULT:
        return start.spec
    given = without_head(model)
    difference = first_difference(given, start.spec)
    if difference:
        raise ConfigError(f"model {model if isinstance(model, str) else '(mapping)'} is not the net of the weights "
                          f"in pretrained ({start.source}): {difference}; leave model out, the net comes "
                          f"from the starting weights")
    return start.spec


def without_head(model: Any) -> dict[str, Any]:
    """A net's spec in full (every default spelled out), less its class count."""
    return {k: v for k, v in resolve_spec(model).to_dict().items() if k != "num_classes"}


def first_difference(given: dict[str, Any], start: dict[str, Any]) -> str | None:
    """Where two net specs (as dicts) first differ, named by block and layer."""
    for key in given:
        if key == "blocks":
            continue
        if given[key] != start.get(key):
            return f"{key} {given[key]!r} against {start.get(key)!r}"
    ours, theirs = given["blocks"], start["blocks"]
    if len(ours) != len(theirs):
        return f"{len(ours)} blocks against {len(theirs)}"
    for b, (mine, other) in enumerate(zip(ours, theirs), start=1):
        for field, values in mine.items():
            if values == other.get(field):
                continue
            if isinstance(values, list) and isinstance(other.get(field), list) and len(values) == len(other[field]):
                layer = next(i for i, (u, v) in enumerate(zip(values, other[field])) if u != v)
                return f"layer c{b}.{layer} has {field} {values[layer]!r} against {other[field][layer]!r}"
            return f"block c{b} has {field} {values!r} against {other.get(field)!r}"
    return None


def resolved(source: str) -> str:
    """A path kept absolute (the run's own resumes and records find it from anywhere); a tag as is."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source
