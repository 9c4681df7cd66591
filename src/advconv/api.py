"""The Python API: the whole toolkit in a few calls.

    import advconv
    result = advconv.fit("configs/fast.yaml", data="../shared/data/cifar10-jpeg.tar.gz", epochs=3)
    model = advconv.load_model("assignment9")          # shipped weights, or a run dir / .safetensors / .pt
    advconv.predict(model, ["cat.jpg", pil_image, uint8_array, tensor])
    print(advconv.summary("assignment9")); print(advconv.check(model))
"""

from __future__ import annotations

import copy
import importlib
import sys
from pathlib import Path
from typing import Any

from torch import nn

from .checkpoint import TrainedModel, load_model
from .config import Config, apply_overrides, load_config
from .inference import predict
from .models import MODELS, NetSpec, build_net, create_model
from .summary import PARAM_BUDGET, ModelSummary, RulesReport, check_rules, summarize
from .train import TrainResult, fit as _fit

__all__ = ["fit", "load_model", "predict", "summary", "check", "create_model", "resolve_model"]


def fit(config: str | Path | Config | None = None, *, progress: bool = True, overwrite: bool = False,
        **overrides: Any) -> TrainResult:
    """Train: ``config`` is a YAML path, a ``Config`` or None (the defaults: configs/assignment9.yaml);
    ``overrides`` set any field by name (``epochs=3``, ``lr=1e-3``, ``data="path/to/data"``)."""
    if "data" in overrides:
        overrides["data.path"] = overrides.pop("data")
    if isinstance(config, Config):
        cfg = apply_overrides(copy.deepcopy(config), overrides)
    else:
        cfg = load_config(config, overrides)
    return _fit(cfg, progress=progress, overwrite=overwrite)


def summary(model: Any, input_size: int | None = None) -> ModelSummary:
    """The per-layer table (``print`` it) of anything ``resolve_model`` takes; ``input_size``
    defaults to a loaded model's own, else 32."""
    return summarize(resolve_model(model), _input_size(model, input_size))


def check(model: Any, input_size: int | None = None, max_params: int = PARAM_BUDGET) -> RulesReport:
    """The assignment's rules on anything ``resolve_model`` takes; ``.passed``, or ``print`` it."""
    return check_rules(resolve_model(model), _input_size(model, input_size), max_params)


def _input_size(model: Any, given: int | None) -> int:
    if given is not None:
        return given
    return model.record.input_size if isinstance(model, TrainedModel) else 32


def resolve_model(name: Any) -> nn.Module:
    """An nn.Module, a loaded model, a NetSpec or a mapping describing one; or by name: a
    registered model, a YAML config's model, or ``package.module:attr`` naming an nn.Module, a
    NetSpec or a factory of one."""
    if isinstance(name, TrainedModel):
        return name.net
    if isinstance(name, nn.Module):
        return name
    if isinstance(name, NetSpec):
        return build_net(name)
    if isinstance(name, dict):  # a mapping describing a net, as a config's model field
        return create_model(name)
    name = str(name)
    if name in MODELS:
        return create_model(name)
    if name.endswith((".yaml", ".yml")):
        return create_model(load_config(name).model)
    if ":" not in name:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))} "
                         "(or a config .yaml, or package.module:attribute)")
    module_name, attr = name.split(":", 1)
    sys.path.insert(0, str(Path.cwd()))
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import model {name!r}: {exc}") from exc
    finally:
        sys.path.pop(0)
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, nn.Module)):
        obj = obj()
    if isinstance(obj, NetSpec):
        obj = build_net(obj)
    if not isinstance(obj, nn.Module):
        raise ValueError(f"{name} is not an nn.Module, a NetSpec or a factory of one")
    return obj
