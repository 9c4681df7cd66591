"""Training: ``fit(cfg)`` runs a whole job; ``fit(resume_from=RUN_DIR)`` continues a stopped one.

Each epoch trains, evaluates (on the test set, or on a validation split held out of training),
logs one line and writes ``last.pt`` (and ``best.pt``, ``model.safetensors``, the metrics files)
into ``cfg.run_dir``. Launched by ``torchrun`` it trains data-parallel (gloo on CPU, nccl on
GPU); only rank 0 evaluates, logs and writes, and an error there stops every rank.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..config import PARAM_BUDGET, Config, DataConfig, config_from_dict, validate_config
from ..data.datasets import (SPLIT_NAMES, ArrayDataset, channel_stats, dataset_classes, describe_data, hold_out,
                             load_dataset)
from ..data.loaders import BatchLoader, make_loaders
from ..errors import ConfigError, TrainingDiverged, warn
from ..nets.models import build_net, validate_spec
from ..nets.rules import check_rules
from ..nets.specs import NetSpec, resolve_spec
from ..nets.summary import summarize
from ..runtime import Runtime, channels_last_grads_right, grad_scaler, restore_rng, rng_state, set_seed
from ..trained import runfiles
from ..trained.checkpoint import Checkpoint, InferenceRecord, load_checkpoint, save_checkpoint, save_weights
from ..trained.manifest import describe_session, end_session, start_session
from ..trained.scoring import evaluate
from .distill import distilled_targets
from .finetune import StartingPoint, net_for, resolved, starting_point
from .loops import train_epoch
from .optim import build_ema, build_optimizer, build_scheduler
from .rundir import prepare_run_dir, write_metrics
from .whiten import WHITENABLE, first_conv_whitening, whiten_first_conv


@dataclass
class TrainResult:
    model: nn.Module                # the trained net (not the EMA: that one is in the checkpoint)
    history: list[dict[str, Any]]   # one row per epoch, as in metrics.json
    best_acc: float
    run_dir: Path
    rank: int = 0
    world_size: int = 1

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


@dataclass
class RunData:
    train_for: Callable[[int], Iterable]  # the training loader of an epoch
    eval_loader: BatchLoader              # what every epoch is scored on: the test set, or the validation split
    split: str                            # "test" or "val": metrics columns and log lines say which
    record: InferenceRecord
    sizes: tuple[int, int]                # training and evaluated images
    steps_per_epoch: int
    described: dict                       # the data as given, as the weights record it (data.describe_data)
    whiten_filters: torch.Tensor | None = None  # the first conv's start, with optim.whiten
    notes: list[str] = dataclasses.field(default_factory=list)  # what was adapted or added, for the log


def _print_now(line: str) -> None:
    print(line, flush=True)  # logs redirected to a file show each epoch as it ends


def fit(cfg: Config | None = None, resume_from: str | Path | None = None, *, log: Callable[[str], None] = _print_now,
        progress: bool = True, overwrite: bool = False,
        on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train ``cfg`` to its last epoch (or to ``target_accuracy``). ``resume_from``: a run
    directory (or a checkpoint in one) to continue exactly as it was configured. A run directory
    that holds another run is refused unless ``overwrite``. ``on_epoch`` is called on the main
    process with each epoch's metrics row once its checkpoint is written; an exception it raises
    stops the run there (a search prunes a poor trial so)."""
    start = time.perf_counter()
    checkpoint = None
    if resume_from is not None:
        if cfg is not None:
            raise ConfigError("resuming continues a run exactly as it was configured: give no config with it")
        checkpoint = load_checkpoint(resume_from)
        cfg = config_from_dict(checkpoint.config)
        cfg.run_dir = str(resume_from if Path(resume_from).is_dir() else Path(resume_from).parent)
    cfg = copy.deepcopy(cfg or Config())
    weights = starting_weights(cfg) if checkpoint is None else None  # a resume restores its own
    spec = checked_spec(cfg)
    rt = Runtime.start(cfg.device, cfg.precision)
    say = log if rt.is_main else (lambda _: None)
    run_dir = Path(cfg.run_dir)
    if rt.is_main:
        prepare_run_dir(run_dir, new_run=checkpoint is None, overwrite=overwrite)
    set_seed(cfg.seed, cfg.deterministic)

    data = load_data(cfg, spec, rt, progress and rt.is_main)
    if rt.is_main:  # after load_data, which may adapt the batch: the manifest records what runs
        sessions = start_session(run_dir, describe_session(cfg, rt.device, rt.world_size))
    model = build_model(cfg, spec, rt, data, weights, say)
    optimizer = build_optimizer(cfg.optim, model)
    scheduler = build_scheduler(cfg.optim, optimizer, cfg.epochs * data.steps_per_epoch)
    ema = build_ema(cfg.optim, model)
    deployed = ema.module if ema is not None else model  # the weights evaluated and shipped
    scaler = grad_scaler(rt)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)

    epoch, best_acc, history, elapsed_before = 0, -1.0, [], 0.0
    if checkpoint is not None:
        restore(checkpoint, model, optimizer, scheduler, ema, scaler)
        epoch, best_acc, history = checkpoint.epoch, checkpoint.best_acc, checkpoint.history
        elapsed_before = history[-1]["elapsed_s"] if history else 0.0
        say(f"Resumed {run_dir} after epoch {epoch}")
    train_model = wrap_for_training(model, cfg, rt)
    name = f"of {cfg.pretrained}" if cfg.pretrained else cfg.model if isinstance(cfg.model, str) else "custom"
    say(f"model {name}: "
        f"{sum(p.numel() for p in model.parameters()):,} params | device {rt.device} "
        f"| precision {rt.dtype or torch.float32} | pipeline {cfg.data.pipeline} | "
        f"{data.sizes[0]} train / {data.sizes[1]} {data.split} images | world size {rt.world_size}")
    for note in data.notes:
        say(note)
    if rt.device.type == "cuda" and cfg.data.pipeline == "albumentations":
        say("note: on a GPU the per-image albumentations pipeline is what limits the speed; "
            "data.pipeline: batched augments on the GPU, about 6x faster per epoch for the same net on an H200")

    while epoch < cfg.epochs:
        t0 = time.perf_counter()
        try:
            train_loss, train_acc = train_epoch(train_model, data.train_for(epoch), optimizer, scheduler, loss_fn,
                                                rt, ema, progress and rt.is_main, scaler)
        except TrainingDiverged as exc:
            raise diverged(exc, epoch, run_dir) from None
        train_s = time.perf_counter() - t0
        epoch += 1
        result = None
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            result = rt.on_main(evaluate, deployed, data.eval_loader, rt, cfg.tta_flip, cfg.tta_shift)
            say(result.line(SPLIT_NAMES[data.split]))
        now = time.perf_counter()
        row = {
            "epoch": epoch, "train_loss": round(train_loss, 5), "train_acc": round(train_acc, 3),
            f"{data.split}_loss": round(result.loss, 5) if result else None,
            f"{data.split}_acc": round(result.accuracy, 3) if result else None,
            "lr": optimizer.param_groups[-1]["lr"], "train_s": round(train_s, 2), "epoch_s": round(now - t0, 2),
            "elapsed_s": round(elapsed_before + now - start, 2),
        }
        history.append(row)
        tested = (f"{data.split} loss {result.loss:.4f} acc {result.accuracy:.2f}%" if result
                  else f"{data.split} not evaluated")
        say(f"Epoch {epoch}/{cfg.epochs}: train loss {train_loss:.4f} acc {train_acc:.2f}% | {tested} | "
            f"{row['epoch_s']:.1f} s (elapsed {row['elapsed_s']:.1f} s)")
        improved = result is not None and result.accuracy >= best_acc
        best_acc = max(best_acc, result.accuracy) if result else best_acc
        checkpoint = Checkpoint(
            model.state_dict(), data.record, cfg.to_dict(), epoch, best_acc, history,
            optimizer.state_dict(), scheduler.state_dict(), scaler.state_dict(), rng_state(),
            ema=ema.module.state_dict() if ema is not None else None,
            ema_state=ema.state_dict() if ema is not None else None, data=data.described)
        rt.on_main(save_run, run_dir, checkpoint, improved)
        if on_epoch is not None and rt.is_main:
            on_epoch(row)
        if result and cfg.target_accuracy is not None and result.accuracy >= cfg.target_accuracy:
            say(f"Reached the target {cfg.target_accuracy}% after epoch {epoch}")
            break

    del train_model  # a DDP wrapper must go before its process group
    rt.finish(model)
    if rt.is_main:
        end_session(run_dir, sessions, time.perf_counter() - start)
    say(f"Done in {time.perf_counter() - start:.1f} s; best {data.split} accuracy {best_acc:.2f}%; "
        f"run dir {run_dir}")
    return TrainResult(model, history, best_acc, run_dir, rt.rank, rt.world_size)


# ---------------------------------------------------------------- the steps of fit

def starting_weights(cfg: Config) -> StartingPoint | None:
    """Paths in ``cfg`` made absolute (the run's own evaluations and resumes find them from
    anywhere); with ``pretrained``, the starting weights, whose net ``cfg.model`` becomes."""
    if cfg.data.path is not None:
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    if cfg.distill.teacher is not None:
        cfg.distill.teacher = resolved(cfg.distill.teacher)
    if cfg.pretrained is None:
        return None
    cfg.pretrained = resolved(cfg.pretrained)
    start = starting_point(cfg.pretrained, cfg.data.image_size)
    cfg.model = net_for(start, cfg.model)
    return start


def checked_spec(cfg: Config) -> NetSpec:
    """The config and its net, validated (parameter budget included) before any image is decoded;
    the net's number of classes follows the dataset's class folders unless the config fixes it."""
    validate_config(cfg)
    spec = resolve_spec(cfg.model)
    validate_spec(spec, cfg.data.image_size, cfg.max_params)
    d = cfg.data
    classes = dataset_classes(d.path, d.cache_dir, d.skip_corrupt, d.image_size)  # no image decoded
    fixed = isinstance(cfg.model, dict) and "num_classes" in cfg.model
    if fixed and len(classes) > spec.num_classes:
        raise ConfigError(f"model.num_classes is {spec.num_classes} but the data has {len(classes)} classes "
                          f"({', '.join(classes)}); raise it or leave it out to follow the data")
    if not fixed and spec.num_classes != len(classes):
        spec = dataclasses.replace(spec, num_classes=len(classes))
        validate_spec(spec, cfg.data.image_size, cfg.max_params)
    check_the_rules(spec, cfg)
    if cfg.optim.whiten and spec.blocks[0].conv_type[0] not in WHITENABLE:
        raise ConfigError(f"optim.whiten needs a first layer of kind {' or '.join(WHITENABLE)}; "
                          f"this net's is {spec.blocks[0].conv_type[0]!r}")
    return spec


def check_the_rules(spec: NetSpec, cfg: Config) -> None:
    """The rules of `advconv check` on the net about to train: each failure is a warning (a net
    outside the assignment may be trained on purpose), or with ``strict`` an error."""
    budget = cfg.max_params or PARAM_BUDGET
    report = check_rules(build_net(spec, cfg.data.image_size, check=False), cfg.data.image_size, budget)
    no_budget = cfg.max_params is None  # then the parameter rule does not apply
    failed = [r for r in report.results if not r.passed and not (no_budget and r.rule.startswith("params"))]
    if failed and cfg.strict:
        raise ConfigError("strict: the net fails " + "; ".join(f"{r.rule} ({r.detail})" for r in failed))
    for r in failed:
        warn(f"the net fails the rule '{r.rule}': {r.detail} (strict: true refuses such a net)")


def load_data(cfg: Config, spec: NetSpec, rt: Runtime, progress: bool = False) -> RunData:
    """What a run trains on, assembled: the images (``read_splits``), the batch they train at
    (``fit_batch_to_data``), a teacher's targets, the loaders, the inference record, and the
    first conv's whitening filters."""
    train, scored, split, described = read_splits(cfg.data, progress)
    notes = [fit_batch_to_data(cfg, len(train) // rt.world_size), fit_layout_to_kernels(cfg, spec, rt)]
    targets = None
    if cfg.distill.teacher is not None:
        targets, note = distilled_targets(cfg, train, rt)
        notes.append(note)
    stats = channel_stats(train.images)
    train_for, eval_loader = make_loaders(cfg, train, scored, stats, rt.rank, rt.world_size, rt.device, targets)
    steps = len(train_for(0))
    if steps == 0:
        share = len(train) // rt.world_size
        raise ConfigError(f"{share} training images{' per process' if rt.distributed else ''} make no full batch "
                          f"of batch_size {cfg.batch_size} (the last, partial batch of an epoch is dropped); "
                          f"use --batch_size {max(1, share)} or less")
    record = InferenceRecord(spec.to_dict(), train.classes, stats.mean, stats.std, cfg.data.image_size,
                             tta_flip=cfg.tta_flip, tta_shift=cfg.tta_shift)
    filters = first_conv_whitening(train, stats, spec.blocks[0]) if cfg.optim.whiten else None
    return RunData(train_for, eval_loader, split, record, (len(train), len(scored)), steps, described, filters,
                   [n for n in notes if n])


def read_splits(d: DataConfig, progress: bool = False) -> tuple[ArrayDataset, ArrayDataset, str, dict]:
    """(training images, what each epoch is evaluated on, its split name, the data's description):
    the test set, or with ``val_split`` a validation split held out of training (recipes are
    chosen on it; the test set stays unseen). The description is of the data as given."""
    train, test = load_dataset(d.path, d.cache_dir, d.skip_corrupt, d.image_size, progress)
    described = describe_data(d.path, train, test)
    if d.val_split:
        return *hold_out(train, d.val_split), "val", described
    return train, test, "test", described


MIN_BATCH = 16


def fit_batch_to_data(cfg: Config, images: int) -> str | None:
    """With fewer than ``min_steps`` steps per epoch a run barely moves per epoch (a few hundred
    images at batch 512 make one or two): the batch shrinks to the largest power of two that
    gives that many steps, but not below ``MIN_BATCH`` (batch norm needs a few images per batch),
    and the learning rate with it (linear scaling), in ``cfg`` itself so that the checkpoint and
    a resume keep them. Returns the line the log shows, or None."""
    if not cfg.min_steps or images // cfg.batch_size >= cfg.min_steps:
        return None
    batch = max(MIN_BATCH, 2 ** max(0, (images // cfg.min_steps).bit_length() - 1))
    if batch >= cfg.batch_size:
        return None
    before, lr = cfg.batch_size, cfg.optim.lr
    cfg.batch_size, cfg.optim.lr = batch, lr * batch / before
    return (f"note: {images} training images make {images // before} steps of batch {before} per epoch; training "
            f"with batch {batch} and lr {cfg.optim.lr:.4g} (scaled from {lr:g}), {images // batch} steps per epoch "
            f"(min_steps {cfg.min_steps}; min_steps 0 keeps the configured batch)")


def fit_layout_to_kernels(cfg: Config, spec: NetSpec, rt: Runtime) -> str | None:
    """channels_last, unless this torch computes a grouped conv of the net wrong in it
    (``channels_last_grads_right``, tried at the conv's own map size): then the run trains
    NCHW, set in ``cfg`` itself so that the checkpoint and a resume keep it. Returns the line
    the log shows, or None."""
    if not cfg.channels_last:
        return None
    model = build_net(spec, cfg.data.image_size, check=False)
    for layer in summarize(model, cfg.data.image_size, spec.in_channels).layers:
        conv = model.get_submodule(layer.name)
        if isinstance(conv, nn.Conv2d) and conv.groups > 1 and not channels_last_grads_right(
                conv, layer.input_shape, rt):
            cfg.channels_last = False
            size = "x".join(map(str, layer.input_shape[1:]))
            return (f"note: this torch computes the weight gradients of {layer.name} (a {conv.groups}-group conv, "
                    f"dilation {conv.dilation[0]}, on a {size} map) wrong in channels_last; training NCHW "
                    "(channels_last: false)")
    return None


def build_model(cfg: Config, spec: NetSpec, rt: Runtime, data: RunData, start: StartingPoint | None = None,
                say: Callable[[str], None] = _print_now) -> nn.Module:
    """The net, from its starting weights when given, or its first conv whitened and frozen when
    asked (before the optimizer, which then leaves those filters out), on the device in the
    configured memory layout."""
    model = build_net(spec, check=False)  # validated in checked_spec
    if data.whiten_filters is not None:
        whiten_first_conv(model, data.whiten_filters)
    if start is not None:
        say(start.load_into(model, data.record.classes).line(start.source))
    model = model.to(rt.device)
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def restore(checkpoint: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
            ema: torch.optim.swa_utils.AveragedModel | None, scaler: torch.amp.GradScaler) -> None:
    """Put a checkpoint's weights, optimizer, schedule, EMA, loss scale and RNG states back."""
    model.load_state_dict(checkpoint.model)
    optimizer.load_state_dict(checkpoint.optimizer)
    scheduler.load_state_dict(checkpoint.scheduler)
    if ema is not None and checkpoint.ema_state:
        ema.load_state_dict(checkpoint.ema_state)
    if checkpoint.scaler:
        scaler.load_state_dict(checkpoint.scaler)
    restore_rng(checkpoint.rng)


def wrap_for_training(model: nn.Module, cfg: Config, rt: Runtime) -> nn.Module:
    """DDP under torchrun, then ``torch.compile`` if asked; the bare model stays for evaluation."""
    if rt.distributed:
        model = nn.parallel.DistributedDataParallel(model)
    return torch.compile(model) if cfg.compile else model


def diverged(exc: TrainingDiverged, epoch: int, run_dir: Path) -> TrainingDiverged:
    """The divergence in words a user can act on: which epoch, and what is kept."""
    kept = run_dir / runfiles.LAST
    return TrainingDiverged(
        f"training stopped in epoch {epoch + 1}: {exc}. Lower the learning rate or check the data; "
        + (f"the last good checkpoint {kept} (epoch {epoch}) is kept." if kept.exists() else
           "no checkpoint had been written yet."))


def save_run(run_dir: Path, checkpoint: Checkpoint, improved: bool) -> None:
    """``last.pt`` (and ``best.pt`` when the evaluated accuracy improved), the deployed weights
    as ``model.safetensors``, then the metrics files."""
    save_checkpoint(run_dir / runfiles.LAST, checkpoint)
    if improved:
        save_checkpoint(run_dir / runfiles.BEST, checkpoint)
    provenance = {"epoch": checkpoint.epoch, "epochs": checkpoint.config["epochs"],
                  "metrics": checkpoint.history[-1], "config": checkpoint.config, "data": checkpoint.data}
    save_weights(run_dir / runfiles.WEIGHTS, checkpoint.deployed, checkpoint.record, provenance)
    write_metrics(run_dir, checkpoint.history)
