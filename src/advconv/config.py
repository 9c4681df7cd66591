"""Run configuration: one dataclass per section, every setting declared once.

Each field carries its type (``Literal`` for a fixed set of values), its default, its help
text and the rule its value keeps; ``advconv train --help``, YAML loading, overrides and
validation all read them from the field. A YAML file (a path, or a shipped recipe's name) may
extend another (``base:``), and overrides name a field by its dotted path (``optim.lr``) or,
where unique, its leaf (``lr``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from . import recipes
from .errors import ConfigError

PARAM_BUDGET = 200_000  # the assignment's rule: fewer parameters than this

Rule = tuple[Callable[[Any], bool], str]  # (the test a value passes, what the message says it must be)


def at_least(low: float) -> Rule:
    return (lambda v: v >= low), f"must be >= {low}"  # validate_config skips null values


def within(low: float, high: float, *, open_high: bool = False) -> Rule:
    if open_high:
        return (lambda v: low <= v < high), f"must be in [{low}, {high})"
    return (lambda v: low <= v <= high), f"must be in [{low}, {high}]"


PROBABILITY = within(0, 1)


def setting(default: Any, help: str, rule: Rule | None = None) -> Any:
    """A config field: its default, what it means, and the rule its value keeps."""
    return field(default=default, metadata={"help": help, "rule": rule})


@dataclass
class DataConfig:
    path: str | None = setting(None, "image-folder directory or .tar.gz (train/<class>/*, test/<class>/*); "
                                     "null: torchvision download")
    cache_dir: str | None = setting(None, "where decoded images are cached as .npz (null: $ADVCONV_CACHE, "
                                          "else ~/.cache/advconv)")
    pipeline: Literal["albumentations", "batched"] = setting(
        "albumentations", "albumentations: the course's per-image transforms; batched: torch ops on whole "
                          "batches, fast on a CPU (each has its own section of augmentations below)")
    workers: int | None = setting(None, "DataLoader workers for albumentations (null: 0 on <= 2 CPUs, else up to 4)",
                                  at_least(0))
    skip_corrupt: bool = setting(False, "skip undecodable images with a warning instead of stopping")
    val_split: int | float = setting(
        0, "hold training images out and evaluate on them instead of the test set: a count (5000) or a "
           "fraction (0.1); 0: off", ((lambda v: v >= 0 and (isinstance(v, int) or v < 1)),
                                      "must be a count >= 0 or a fraction below 1"))
    image_size: int = setting(32, "every image is resized (stretched) to this many pixels square", within(8, 1024))


@dataclass
class AugmentConfig:
    """What both pipelines do."""

    hflip: float = setting(0.5, "probability of a horizontal flip", PROBABILITY)
    alternate_flip: bool = setting(False, "mirror each image every other epoch instead of at random")
    cutout: float = setting(0.5, "probability of one square hole filled with the dataset mean", PROBABILITY)
    cutout_size: int = setting(16, "side of the cutout hole in pixels", at_least(1))


@dataclass
class AlbumentationsConfig:
    """What only the albumentations pipeline does: shift-scale-rotate."""

    affine: float = setting(0.5, "probability of shift-scale-rotate", PROBABILITY)
    shift: float = setting(0.0625, "max shift, as a fraction of the size", within(0, 1))
    scale: float = setting(0.1, "max scale change, as a fraction", within(0, 1, open_high=True))
    rotate: float = setting(15.0, "max rotation in degrees", within(0, 180))


@dataclass
class BatchedConfig:
    """What only the batched pipeline does."""

    translate: int = setting(4, "max shift in pixels (reflect-padded crop)", at_least(0))
    downsample: float = setting(0.0, "probability of showing an image at a lower resolution (shrunk, then "
                                     "stretched back)", PROBABILITY)
    downsample_min: int = setting(16, "the smallest size, in pixels, a downsampled image is shrunk to", at_least(8))
    mixup: float = setting(0.0, "MixUp: each image averaged with a partner from its batch, the weight drawn from "
                                "Beta(a, a); the targets mixed alike (0: off)", at_least(0))
    cutmix: float = setting(0.0, "CutMix: a box of a partner's image pasted in, its area drawn from Beta(a, a); the "
                                 "targets mixed by area; with mixup too, one of the two per batch (0: off)", at_least(0))


@dataclass
class OptimConfig:
    name: Literal["sgd", "adam", "adamw", "muon"] = setting(
        "sgd", "sgd (with momentum, Nesterov by default), adam, adamw, or muon (Muon's orthogonalized steps for "
               "the dense conv filters, sgd for the rest)")
    lr: float = setting(0.4, "peak learning rate", (lambda v: v > 0, "must be > 0"))
    momentum: float = setting(0.9, "SGD momentum", within(0, 1, open_high=True))
    nesterov: bool = setting(True, "Nesterov momentum for SGD")
    weight_decay: float = setting(5e-4, "L2 penalty on conv/linear weights (not on norms or biases)", at_least(0))
    muon_lr: float = setting(0.3, "muon: the filters' peak learning rate, as a multiple of lr",
                             (lambda v: v > 0, "must be > 0"))
    muon_momentum: float = setting(0.6, "muon: the filters' Nesterov momentum", within(0, 1, open_high=True))
    schedule: Literal["onecycle", "cosine", "linear", "step", "constant"] = setting(
        "onecycle", "learning-rate schedule, stepped every batch")
    warmup: float = setting(0.2, "fraction of the steps spent warming up", within(0, 1, open_high=True))
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy", within(0, 1, open_high=True))
    ema: float = setting(0.0, "decay of an exponential moving average of the weights, evaluated and shipped "
                              "(0: off)", within(0, 1, open_high=True))
    whiten: bool = setting(False, "start the first conv as patch-whitening filters of the training images, "
                                  "kept frozen")


@dataclass
class DistillConfig:
    """Learning from a trained teacher (``advconv.distill``)."""

    teacher: str | None = setting(None, "a trained net whose predictions join the training targets: a run directory, "
                                        "a weights file or a shipped name (null: off)")
    teacher_weight: float = setting(0.5, "the teacher's share of each training target; its label has the rest", PROBABILITY)
    temperature: float = setting(1.0, "the teacher's logits are divided by this before its softmax (above 1: softer)",
                                 (lambda v: v > 0, "must be > 0"))


@dataclass
class Config:
    model: Any = setting("stem8", "an architecture name, or a mapping describing a net (blocks of per-layer "
                                  "lists, or base: NAME with the fields it changes)")
    pretrained: str | None = setting(None, "start from trained weights (a shipped tag, a run directory, a .safetensors "
                                           "or .pt): their net and every tensor, the classifier fresh unless the "
                                           "data has the classes it was trained on (null: random weights)")
    epochs: int = setting(36, "passes over the training set", at_least(1))
    batch_size: int = setting(512, "images per step (per process under torchrun)", at_least(1))
    min_steps: int = setting(20, "a training set too small for this many steps per epoch at batch_size trains with a "
                                 "smaller batch (a power of two) and the learning rate scaled with it, as the log "
                                 "says (0: never)", at_least(0))
    seed: int = setting(0, "seeds the weights, the shuffle and the augmentation (with the epoch number)")
    device: str = setting("auto", "auto (cuda, else mps, else cpu), cpu, cuda or mps")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = setting(
        "auto", "auto: bf16 where native, fp16 with loss scaling on older GPUs, else fp32")
    channels_last: bool = setting(True, "NHWC memory layout (faster convolutions on CPUs and tensor cores); "
                                         "NCHW instead where this torch computes one of the net's grouped "
                                         "convs wrong in it (the log says)")
    compile: bool = setting(False, "torch.compile the training model")
    tta_flip: bool = setting(True, "test time: average the logits of each image and its mirror")
    tta_shift: int = setting(0, "test time: also average copies shifted by +-N pixels (0: none)", within(0, 8))
    eval_every: int = setting(1, "evaluate every N epochs and after the last", at_least(1))
    deterministic: bool = setting(False, "deterministic algorithms only (bitwise-repeatable runs, slower)")
    max_params: int | None = setting(PARAM_BUDGET, "refuse nets with this many parameters or more (null: no budget)",
                                     at_least(1))
    strict: bool = setting(False, "refuse a net that fails any rule of `advconv check` (else: a warning each)")
    run_dir: str = setting("runs/default", "where checkpoints, metrics, the manifest and figures go")
    target_accuracy: float | None = setting(None, "stop once the evaluated accuracy (%) reaches this (null: never)")
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    albumentations: AlbumentationsConfig = field(default_factory=AlbumentationsConfig)
    batched: BatchedConfig = field(default_factory=BatchedConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PIPELINE_SECTIONS = ("albumentations", "batched")  # each applies to the data.pipeline of its name only


@dataclass(frozen=True)
class Setting:
    """One leaf field of ``Config``, as the CLI, overrides and validation see it."""

    path: str           # dotted: "optim.lr"
    hint: Any           # its type
    default: Any
    help: str
    rule: Rule | None

    @property
    def choices(self) -> tuple | None:
        return typing.get_args(self.hint) if typing.get_origin(self.hint) is Literal else None


def settings(cls: type = Config, prefix: str = "") -> list[Setting]:
    """Every leaf field of ``cls``, sections expanded, in declaration order."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            found += settings(hints[f.name], f"{prefix}{f.name}.")
        else:
            found.append(Setting(f"{prefix}{f.name}", hints[f.name], f.default, f.metadata["help"],
                                 f.metadata["rule"]))
    return found


SETTINGS = {s.path: s for s in settings()}
RENAMED = {"tta": "tta_flip"}  # old field name -> new (CHANGELOG.md): stored configs are read, typed ones told
SECTIONS = tuple(name for name, hint in typing.get_type_hints(Config).items() if dataclasses.is_dataclass(hint))


def by_leaf() -> dict[str, list[str]]:
    """Leaf name -> the dotted paths that end in it (most names are unique)."""
    leaves: dict[str, list[str]] = {}
    for path in SETTINGS:
        leaves.setdefault(path.rsplit(".", 1)[-1], []).append(path)
    return leaves


def resolve_key(key: str) -> str:
    """The dotted path a key names: itself, or the one path its leaf name ends."""
    key = key.replace("-", "_")
    if key in SETTINGS:
        return key
    if key in RENAMED:
        raise ConfigError(f"config field {key!r} is now {RENAMED[key]!r} (CHANGELOG.md)")
    paths = by_leaf().get(key, [])
    if len(paths) == 1:
        return paths[0]
    if paths:
        raise ConfigError(f"{key!r} is ambiguous; use one of {', '.join(paths)}")
    close = difflib.get_close_matches(key, list(SETTINGS) + list(by_leaf()), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else " (`advconv train --help` lists them)"
    raise ConfigError(f"unknown config field {key!r}{hint}")


def check_value(path: str, value: Any) -> Any:
    """``value`` as the field at ``path`` holds it (an int where a float is wanted becomes a
    float), or ConfigError naming the field and what it takes."""
    s = SETTINGS[path]
    if s.hint is Any:
        return value
    if s.choices:
        if value not in s.choices:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(s.choices)}")
        return value
    union = typing.get_origin(s.hint) in (typing.Union, types.UnionType)
    allowed = typing.get_args(s.hint) if union else (s.hint,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and int not in allowed and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not any(isinstance(value, t) and not (t is int and isinstance(value, bool))
               for t in allowed if t is not type(None)):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise ConfigError(f"{path}: expected {names}, got {value!r}")
    return value


def _get(cfg: Config, path: str) -> Any:
    obj = cfg
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def validate_config(cfg: Config) -> None:
    """Reject values no run can use, naming the field, before any data is loaded."""
    for path, s in SETTINGS.items():
        value = _get(cfg, path)
        if s.rule is not None and value is not None and not s.rule[0](value):
            raise ConfigError(f"{path} {s.rule[1]}, got {value!r}")
    if cfg.batched.downsample and not cfg.batched.downsample_min < cfg.data.image_size:
        raise ConfigError(f"batched.downsample_min must be below data.image_size ({cfg.data.image_size}), "
                          f"got {cfg.batched.downsample_min}")
    if cfg.augment.alternate_flip and cfg.augment.hflip == 0:
        raise ConfigError("augment.alternate_flip mirrors every image every other epoch, which augment.hflip 0 "
                          "forbids; set hflip > 0 or alternate_flip false")
    for section in PIPELINE_SECTIONS:
        changed = [f"{section}.{f.name}" for f in dataclasses.fields(getattr(cfg, section))
                   if getattr(getattr(cfg, section), f.name) != f.default]
        if changed and cfg.data.pipeline != section:
            raise ConfigError(f"{', '.join(changed)} set, but data.pipeline is {cfg.data.pipeline}: the {section} "
                              f"section applies to the {section} pipeline only")
    if cfg.optim.whiten and cfg.pretrained is not None:
        raise ConfigError("optim.whiten starts the first conv from the data and pretrained from trained weights: "
                          "choose one")
    if not isinstance(cfg.model, (str, dict)):
        raise ConfigError(f"model must be a model name or a mapping describing one, got {cfg.model!r}")


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


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Set fields by dotted path or unique leaf name, type-checked."""
    for key, value in overrides.items():
        path = resolve_key(key)
        parent, _, leaf = path.rpartition(".")
        setattr(_get(cfg, parent) if parent else cfg, leaf, check_value(path, value))
    return cfg


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as dotted paths; a section given as anything but a mapping is named."""
    flat = {}
    for key, value in data.items():
        if not prefix and key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{key} is a section: expected a mapping of its fields, got {value!r}")
            flat.update(_flatten(value, f"{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_path(config: str | Path) -> Path:
    """The file a ``--config`` value means: a shipped recipe's name (``fast``), else a path."""
    return recipes.path_of(str(config)) if recipes.is_name(config) else Path(config)


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML config (a path or a recipe's name) as nested dicts, with its ``base:`` (a recipe's
    name, or a config file relative to this one) read first and overlaid: sections merge field by
    field, ``model`` is replaced whole."""
    path = config_path(path)
    if path.resolve() in _seen:
        raise ConfigError(f"config {path} extends itself (base: chain {' -> '.join(map(str, _seen))})")
    try:
        data = parse_yaml(path.read_text()) or {}
    except FileNotFoundError:
        hint = f" (the base of {_seen[-1]})" if _seen else "; the shipped recipes go by name: `advconv recipes`"
        raise ConfigError(f"config file not found: {path}{hint}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of fields")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"config file {path}: base must be a recipe's name or another config file, got {base!r}")
    return _merge(read_config_file(base if recipes.is_name(base) else path.parent / base, _seen + (path.resolve(),)),
                  data)


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
        try:
            apply_overrides(cfg, _flatten(read_config_file(path)))
        except ConfigError as exc:
            if str(exc).startswith("config file"):
                raise
            raise ConfigError(f"config file {path}: {exc}") from None
    return apply_overrides(cfg, overrides or {})


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config saved with ``to_dict`` (e.g. in a checkpoint), older field names read as
    their new ones."""
    return apply_overrides(Config(), {RENAMED.get(k, k): v for k, v in _flatten(data).items()})
