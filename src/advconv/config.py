"""Run configuration: dataclasses, loaded from YAML, overridden from the command line.

Overrides are ``--key value`` pairs: ``key`` is a field name (``--lr 0.05``) or a dotted
path when the name is ambiguous (``--optim.lr 0.05``); values are parsed as YAML, with
numbers in any usual spelling (``1e-3``, ``.1``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    path: str | None = None
    cache_dir: str = "~/.cache/advconv"
    pipeline: str = "albumentations"
    workers: int | None = None
    skip_corrupt: bool = False
    val_split: int = 0
    image_size: int = 32


@dataclass
class AugmentConfig:
    hflip: float = 0.5
    alternate_flip: bool = False
    affine: float = 0.5
    shift: float = 0.0625
    scale: float = 0.1
    rotate: float = 15.0
    translate: int = 4
    cutout: float = 0.5
    cutout_size: int = 16
    downsample: float = 0.0
    downsample_min: int = 16
    low_res: int = 0
    low_res_share: float = 0.5


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.4
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup: float = 0.2
    label_smoothing: float = 0.0
    ema: float = 0.0
    whiten: bool = False
    lookahead: bool = False


@dataclass
class Config:
    model: Any = "stem8"
    epochs: int = 36
    batch_size: int = 512
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    tta: bool = True
    tta_shift: int = 0
    eval_every: int = 1
    deterministic: bool = False
    max_params: int | None = 200_000
    run_dir: str = "runs/assignment9"
    target_accuracy: float | None = None
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# what each field means: `advconv train --help` lists them with their defaults (a test keeps
# this table and the dataclasses in step)
HELP = {
    "model": "a registered model name, or a mapping describing one (blocks of per-layer lists)",
    "epochs": "passes over the training set",
    "batch_size": "images per step (per process under torchrun)",
    "seed": "seeds the weights, the shuffle and the augmentation (with the epoch number)",
    "device": "auto (cuda, else mps, else cpu) | cpu | cuda | mps",
    "precision": "auto (bf16 where native, fp16 + loss scaling on older GPUs, else fp32) | fp32 | bf16 | fp16",
    "channels_last": "NHWC memory layout (faster convolutions on CPUs and tensor cores)",
    "compile": "torch.compile the training model",
    "tta": "test time: average the logits of each image and its mirror",
    "tta_shift": "test time: also average copies shifted by +-N pixels (0: none)",
    "deterministic": "deterministic algorithms only (bitwise-repeatable runs, slower)",
    "max_params": "refuse nets with this many parameters or more (null: no budget)",
    "run_dir": "where checkpoints, metrics, the manifest and figures go",
    "eval_every": "evaluate every N epochs and after the last (long runs spend less time testing)",
    "target_accuracy": "stop once the evaluated accuracy (%) reaches this (null: never)",
    "data.path": "image-folder directory or .tar.gz (train/<class>/*, test/<class>/*); null: torchvision download",
    "data.cache_dir": "where decoded images are cached as .npz",
    "data.pipeline": "albumentations (the course's, per image) | batched (torch ops on whole batches, fast on CPU)",
    "data.workers": "DataLoader workers for albumentations (null: 0 on <= 2 CPUs, else up to 4)",
    "data.skip_corrupt": "skip undecodable images with a warning instead of stopping",
    "data.val_split": "hold N training images out and evaluate on them instead of the test set (0: off)",
    "data.image_size": "every image is resized (stretched) to this many pixels square",
    "augment.hflip": "probability of a horizontal flip",
    "augment.alternate_flip": "mirror each image every other epoch instead of at random",
    "augment.affine": "albumentations: probability of shift-scale-rotate",
    "augment.shift": "albumentations: max shift, as a fraction of the size",
    "augment.scale": "albumentations: max scale change, as a fraction",
    "augment.rotate": "albumentations: max rotation in degrees",
    "augment.translate": "batched: max shift in pixels (reflect-padded crop)",
    "augment.cutout": "probability of one square hole filled with the dataset mean",
    "augment.cutout_size": "side of the cutout hole in pixels",
    "augment.downsample": "batched: probability of showing an image at a lower resolution (shrunk, then stretched back)",
    "augment.downsample_min": "batched: the smallest size, in pixels, a downsampled image is shrunk to",
    "augment.low_res": "train the first epochs on batches downscaled to N pixels, cheaper per epoch (0: off)",
    "augment.low_res_share": "the share of the epochs trained at low_res; the rest, and every evaluation, at full size",
    "optim.name": "sgd (Nesterov) | adam | adamw",
    "optim.lr": "peak learning rate",
    "optim.momentum": "SGD momentum",
    "optim.nesterov": "Nesterov momentum for SGD",
    "optim.weight_decay": "L2 penalty on conv/linear weights (not on norms or biases)",
    "optim.schedule": "onecycle | cosine | linear | step | constant, stepped every batch",
    "optim.warmup": "fraction of the steps spent warming up",
    "optim.label_smoothing": "label smoothing of the cross-entropy",
    "optim.ema": "decay of an exponential moving average of the weights, evaluated and shipped (0: off)",
    "optim.whiten": "start the first conv as patch-whitening filters of the training images, kept frozen",
    "optim.lookahead": "every 5 steps pull the weights toward a slow copy, harder as training ends (airbench)",
}


def describe_fields() -> str:
    """Every config field, its default and its meaning: the text of ``advconv train --help``."""
    defaults = {path: _get(Config(), path) for path in _leaf_paths(Config)}
    width = max(len(p) for p in defaults) + 2
    return "\n".join(f"  --{path:<{width}} {HELP[path]} (default: {defaults[path]!r})" for path in defaults)


CHOICES = {
    "data.pipeline": ("albumentations", "batched"),
    "optim.name": ("sgd", "adam", "adamw"),
    "optim.schedule": ("onecycle", "cosine", "linear", "step", "constant"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
}


class _Loader(yaml.SafeLoader):
    """YAML with numbers as people write them: PyYAML follows YAML 1.1, where ``1e-3`` and
    ``5e-4`` (no dot, or no sign in the exponent) are strings; here they are floats, as in
    YAML 1.2 and Python."""


_Loader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class ConfigError(ValueError):
    """A config file or override names an unknown field or gives a value of the wrong type."""


def validate_config(cfg: Config) -> None:
    """Reject values no run can use, naming the field, before any data is loaded."""
    checks = [
        ("epochs", cfg.epochs >= 1, "must be >= 1"),
        ("batch_size", cfg.batch_size >= 1, "must be >= 1"),
        ("eval_every", cfg.eval_every >= 1, "must be >= 1"),
        ("data.workers", cfg.data.workers is None or cfg.data.workers >= 0, "must be >= 0 or null"),
        ("data.val_split", cfg.data.val_split >= 0, "must be >= 0"),
        ("data.image_size", 8 <= cfg.data.image_size <= 1024, "must be in [8, 1024] pixels"),
        ("optim.lr", cfg.optim.lr > 0, "must be > 0"),
        ("optim.momentum", 0 <= cfg.optim.momentum < 1, "must be in [0, 1)"),
        ("optim.weight_decay", cfg.optim.weight_decay >= 0, "must be >= 0"),
        ("optim.warmup", 0 <= cfg.optim.warmup < 1, "must be in [0, 1)"),
        ("optim.label_smoothing", 0 <= cfg.optim.label_smoothing < 1, "must be in [0, 1)"),
        ("optim.ema", 0 <= cfg.optim.ema < 1, "must be in [0, 1)"),
        ("tta_shift", 0 <= cfg.tta_shift <= 8, "must be in [0, 8] pixels"),
        ("augment.translate", cfg.augment.translate >= 0, "must be >= 0"),
        ("augment.cutout_size", cfg.augment.cutout_size >= 1, "must be >= 1"),
        ("augment.downsample_min", cfg.augment.downsample == 0 or 8 <= cfg.augment.downsample_min < cfg.data.image_size,
         f"must be in [8, data.image_size) = [8, {cfg.data.image_size})"),
        ("augment.low_res", cfg.augment.low_res == 0 or 8 <= cfg.augment.low_res < cfg.data.image_size,
         f"must be 0 (off) or in [8, data.image_size) = [8, {cfg.data.image_size})"),
        ("augment.low_res_share", 0 <= cfg.augment.low_res_share <= 1, "must be in [0, 1]"),
        ("max_params", cfg.max_params is None or cfg.max_params >= 1, "must be >= 1 or null"),
    ]
    for name in ("hflip", "affine", "cutout", "downsample"):
        checks.append((f"augment.{name}", 0 <= getattr(cfg.augment, name) <= 1, "is a probability in [0, 1]"))
    for path, ok, rule in checks:
        if not ok:
            raise ConfigError(f"{path} {rule}, got {_get(cfg, path)!r}")
    if cfg.augment.alternate_flip and cfg.augment.hflip == 0:
        raise ConfigError("augment.alternate_flip mirrors every image every other epoch, which augment.hflip 0 "
                          "forbids; set hflip > 0 or alternate_flip false")
    if not isinstance(cfg.model, (str, dict)):
        raise ConfigError(f"model must be a model name or a mapping describing one, got {cfg.model!r}")


# the augmentations each pipeline applies; the others' fields do nothing there
PIPELINE_FIELDS = {
    "batched": ("hflip", "alternate_flip", "translate", "cutout", "cutout_size", "downsample", "downsample_min",
                "low_res", "low_res_share"),
    "albumentations": ("hflip", "alternate_flip", "affine", "shift", "scale", "rotate", "cutout", "cutout_size",
                       "low_res", "low_res_share"),
}


def unused_options(cfg: Config) -> list[str]:
    """Augmentation fields set away from their defaults that the chosen pipeline ignores."""
    used, default = PIPELINE_FIELDS[cfg.data.pipeline], AugmentConfig()
    return [f"augment.{f.name}={getattr(cfg.augment, f.name)!r} has no effect with the "
            f"{cfg.data.pipeline} pipeline" for f in dataclasses.fields(AugmentConfig)
            if f.name not in used and getattr(cfg.augment, f.name) != getattr(default, f.name)]


def _leaf_paths(cls, prefix: str = "") -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    paths = {}
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            paths.update(_leaf_paths(hints[f.name], f"{prefix}{f.name}."))
        else:
            paths[f"{prefix}{f.name}"] = hints[f.name]
    return paths


def _check_type(path: str, value: Any, hint) -> Any:
    if hint is Any:
        return value
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    allowed = typing.get_args(hint) if union else (hint,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not any(isinstance(value, t) and not (t is int and isinstance(value, bool))
               for t in allowed if t is not type(None)):
        names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
        raise ConfigError(f"{path}: expected {names}, got {value!r}")
    if path in CHOICES and value not in CHOICES[path]:
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(CHOICES[path])}")
    return value


def _get(cfg: Config, path: str) -> Any:
    obj = cfg
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def _set(cfg: Config, path: str, value: Any) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(_get(cfg, parent) if parent else cfg, leaf, value)


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Set fields by full dotted path or by unique leaf name, type-checked."""
    paths = _leaf_paths(Config)
    by_leaf: dict[str, list[str]] = {}
    for p in paths:
        by_leaf.setdefault(p.rsplit(".", 1)[-1], []).append(p)
    for key, value in overrides.items():
        key = key.replace("-", "_")
        if key in paths:
            path = key
        elif len(by_leaf.get(key, [])) == 1:
            path = by_leaf[key][0]
        elif key in by_leaf:
            raise ConfigError(f"--{key} is ambiguous; use one of {', '.join('--' + p for p in by_leaf[key])}")
        else:
            raise ConfigError(f"unknown config field {key!r}; known: {', '.join(sorted(paths))}")
        _set(cfg, path, _check_type(path, value, paths[path]))
    return cfg


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "model":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML config as nested dicts, with its ``base:`` (a config it extends, relative to this
    file) read first and overlaid: sections merge field by field, ``model`` is replaced whole."""
    path = Path(path)
    if path.resolve() in _seen:
        raise ConfigError(f"config {path} extends itself (base: chain {' -> '.join(map(str, _seen))})")
    try:
        data = parse_yaml(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of fields")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base must be the path of another config file, got {base!r}")
    return _merge(read_config_file(path.parent / base, _seen + (path.resolve(),)), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "model":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file (and the ones it extends), then the overrides."""
    cfg = Config()
    if path is not None:
        apply_overrides(cfg, _flatten(read_config_file(path)))
    return apply_overrides(cfg, overrides or {})


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config saved with ``to_dict`` (e.g. in a checkpoint)."""
    return apply_overrides(Config(), _flatten(data))


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``['--lr', '0.05', '--tta']`` -> ``{'lr': 0.05, 'tta': True}`` (a bare flag means true)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        key = args[i]
        if not key.startswith("--"):
            raise ConfigError(f"expected --field value, got {key!r}")
        key = key[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            raw, i = args[i + 1], i + 2
        else:
            raw, i = "true", i + 1
        out[key] = parse_yaml(raw)
    return out
