"""From a name or a path to a net: the one place that turns what a user typed into a model.

Names follow timm: an architecture name (``stem8``) always means that architecture, built
untrained or, with ``pretrained=True``, with the weights shipped for it; shipped weights are
tagged ``ARCHITECTURE.RECIPE`` (``stem8.default``: the stem8 net trained by the default
recipe). A trained model can also come from a run directory, a
``.safetensors`` (with its ``.json``) or a ``.pt`` checkpoint.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import recipes
from ..config import load_config
from ..errors import CheckpointError, ConfigError, note
from ..nets.models import build_net
from ..nets.specs import MODELS, NetSpec, resolve_spec
from . import runfiles
from .checkpoint import InferenceRecord, load_checkpoint, load_weights

SHIPPED = Path(__file__).resolve().parents[1] / "weights"  # trained weights that come with the package


def shipped_tags() -> list[str]:
    return sorted(p.name.removesuffix(".safetensors") for p in SHIPPED.glob("*.safetensors"))


def _as_renamed(name: str) -> str:
    """A tag with its recipe's new name (``stem8.assignment9`` -> ``stem8.default``)."""
    architecture, _, recipe = name.partition(".")
    return f"{architecture}.{recipes.RENAMED.get(recipe)}"


def is_shipped(name: str) -> bool:
    """Whether ``name`` is a shipped tag, by its name now or before its recipe was renamed."""
    return name in shipped_tags() or _as_renamed(name) in shipped_tags()


def architecture_of(name: str) -> str:
    """The architecture a name means: a tag's part before the dot, or the name itself."""
    return name.split(".", 1)[0]


def renamed_tag(name: str) -> str:
    """A tag whose recipe was renamed (``stem8.assignment9``) as it is named now, said in one line."""
    new = _as_renamed(name)
    if new in shipped_tags():
        note(f"{name} is now {new} (CHANGELOG.md)")
        return new
    return name


def pretrained_tag(name: str) -> str:
    """The shipped weights ``name`` means: a tag (or its old name), or an architecture's first tag."""
    tags = shipped_tags()
    name = renamed_tag(name) if name not in tags else name
    if name in tags:
        return name
    for tag in tags:
        if architecture_of(tag) == name:
            return tag
    raise ConfigError(f"no shipped weights for {name!r}; shipped: {', '.join(tags) or 'none'}")


@dataclass
class TrainedModel:
    """A trained net ready to use: eval mode, its inference record, and where it came from
    (the run's config and epoch, or the provenance shipped with the weights)."""

    net: nn.Module
    record: InferenceRecord
    provenance: dict[str, Any]

    @property
    def data_config(self) -> dict[str, Any]:
        """The ``data`` section it was trained with ({} where its provenance carries no config)."""
        return (self.provenance.get("config") or {}).get("data", {})


def create_model(name: str | dict | NetSpec, input_size: int = 32, pretrained: bool = False,
                 num_classes: int | None = None) -> nn.Module:
    """The net ``name`` means: an architecture (``stem8``), a shipped tag (``stem8.default``:
    its architecture), a ``NetSpec`` or its mapping (``{"base": "stem8", "activation": "gelu"}``).
    ``pretrained``: with the shipped weights of that name, in eval mode. ``num_classes``: that many
    outputs; with ``pretrained`` and another count than the weights', the classifier starts fresh
    (timm's way to fine-tune)."""
    if pretrained:
        if not isinstance(name, str):
            raise ConfigError("pretrained=True takes an architecture name or a shipped tag")
        trained = load_model(pretrained_tag(name))
        if num_classes is None or num_classes == len(trained.record.classes):
            return trained.net
        net = build_net(dataclasses.replace(resolve_spec(trained.record.spec), num_classes=num_classes),
                        trained.record.input_size)
        load_matching(net, trained.net.state_dict())
        return net.eval()
    if isinstance(name, str) and "." in name:
        name = architecture_of(name)
    spec = resolve_spec(name)
    return build_net(spec if num_classes is None else dataclasses.replace(spec, num_classes=num_classes), input_size)


HEAD = "head."  # the classifier's parameter names start so (models.build_net)


@dataclass
class Loaded:
    """What ``load_matching`` did: the tensors loaded and those that start fresh."""

    loaded: list[str]
    fresh: list[str]

    def line(self, source: str) -> str:
        fresh = f"; {', '.join(self.fresh)} {'starts' if len(self.fresh) == 1 else 'start'} fresh (other classes)" \
            if self.fresh else ""
        total = len(self.loaded) + len(self.fresh)
        return f"pretrained: loaded {len(self.loaded)} of {total} tensors from {source}{fresh}"


def load_matching(net: nn.Module, weights: dict[str, torch.Tensor], same_classes: bool = True) -> Loaded:
    """Every tensor of ``weights`` whose name and shape match one of ``net``'s, loaded in place;
    the classifier keeps its fresh start where its shape differs (another class count) or where
    ``same_classes`` is false (its rows belong to other classes). Any other tensor that is
    missing or differs means another net: ConfigError naming the layer."""
    own = net.state_dict()
    fresh = [k for k in own if k.startswith(HEAD) and
             (not same_classes or k not in weights or weights[k].shape != own[k].shape)]
    for name, tensor in own.items():
        if name in fresh:
            continue
        if name not in weights:
            raise ConfigError(f"the starting weights have no {name}: they belong to another net")
        if weights[name].shape != tensor.shape:
            raise ConfigError(f"the starting weights' {name} has shape {tuple(weights[name].shape)}, this net's "
                              f"{tuple(tensor.shape)}: they belong to another net")
    extra = sorted(set(weights) - set(own))
    if extra:
        raise ConfigError(f"the starting weights hold {extra[0]}, which this net lacks: they belong to another net")
    net.load_state_dict({k: v for k, v in weights.items() if k not in fresh}, strict=False)
    return Loaded([k for k in own if k not in fresh], fresh)


def load_model(source: str | Path) -> TrainedModel:
    """A trained model: a shipped tag (``stem8.default``), an architecture with shipped weights
    (its first tag), a run directory, a ``.safetensors`` (with its ``.json``) or a ``.pt``
    checkpoint; only the checkpoint is a pickle, read with ``weights_only``."""
    path = Path(source)
    if isinstance(source, str) and not path.exists():
        if is_shipped(source) or source in MODELS:
            path = SHIPPED / f"{pretrained_tag(source)}.safetensors"
    if path.is_dir():
        path = path / runfiles.WEIGHTS if (path / runfiles.WEIGHTS).exists() else path / runfiles.LAST
    if path.suffix == ".safetensors":
        return TrainedModel(*load_weights(path))
    if path.exists():
        checkpoint = load_checkpoint(path)
        return TrainedModel(checkpoint.net(), checkpoint.record,
                            {"config": checkpoint.config, "epoch": checkpoint.epoch, "data": checkpoint.data})
    raise CheckpointError(f"no trained model at {source}: give a run directory, a .pt checkpoint, a .safetensors "
                          f"or a shipped name ({', '.join(shipped_tags()) or 'none shipped'})")


def resolve_model(source: Any) -> nn.Module:
    """Any net a user can name (see ``resolve_with_size``)."""
    return resolve_with_size(source)[0]


def names_trained_weights(source: Any) -> bool:
    """Whether ``resolve_with_size`` reads ``source`` as trained weights (a shipped tag, a run
    directory, a weights file), not as a net to build untrained."""
    if not isinstance(source, (str, Path)):
        return False
    name = str(source)
    built = name in MODELS or name.endswith((".yaml", ".yml")) or name in recipes.names()
    return not built and (is_shipped(name) or Path(name).exists())


def resolve_with_size(source: Any) -> tuple[nn.Module, int]:
    """A net and the image size it takes, from: an nn.Module, a ``TrainedModel``, a ``NetSpec``
    or its mapping; or by name: an architecture, a shipped tag, a config .yaml (its model at its
    image size), a run directory or weights file (the trained net), or ``package.module:attr``
    naming an nn.Module, a NetSpec or a factory of one. A recipe's name (``fast``) means its net,
    as a config .yaml does."""
    if isinstance(source, TrainedModel):
        return source.net, source.record.input_size
    if isinstance(source, nn.Module):
        return source, 32
    if isinstance(source, (NetSpec, dict)):
        return create_model(source), 32
    name = str(source)
    if name in MODELS:
        return create_model(name), 32
    if name.endswith((".yaml", ".yml")) or name in recipes.names():
        cfg = load_config(name)
        return create_model(cfg.model, cfg.data.image_size), cfg.data.image_size
    if names_trained_weights(name):
        trained = load_model(name)
        return trained.net, trained.record.input_size
    if ":" not in name:
        raise ConfigError(f"unknown model {name!r}: not an architecture ({', '.join(sorted(MODELS))}), a shipped "
                          f"tag ({', '.join(shipped_tags())}), a recipe or config .yaml, a run directory or weights "
                          "file, or package.module:attribute")
    return _imported(name), 32


def _imported(name: str) -> nn.Module:
    module_name, attr = name.split(":", 1)
    sys.path.insert(0, str(Path.cwd()))
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import model {name!r}: {exc}") from None
    finally:
        sys.path.pop(0)
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, nn.Module)):
        obj = obj()
    if isinstance(obj, NetSpec):
        obj = build_net(obj)
    if not isinstance(obj, nn.Module):
        raise ConfigError(f"{name} is not an nn.Module, a NetSpec or a factory of one")
    return obj


def beside(source: str | Path, filename: str) -> Path:
    """Where an output made from a model goes by default: in its run directory, beside its file,
    or (a shipped name) in the current folder."""
    path = Path(source)
    return (path if path.is_dir() else path.parent if path.exists() else Path(".")) / filename
