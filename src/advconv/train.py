"""Training: ``fit(cfg)`` runs a whole job, ``resume(run_dir)`` continues a stopped one.

Each epoch trains, evaluates on the test set, logs one line and writes ``last.pt`` (and
``best.pt``, ``metrics.csv``, ``metrics.json``) into ``cfg.run_dir``. Launched by
``torchrun`` it trains data-parallel (gloo on CPU, nccl on GPU); only rank 0 evaluates,
logs and writes.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .checkpoint import (WEIGHTS, InferenceRecord, load_checkpoint, prepare_run_dir, save_checkpoint,
                         save_weights, write_metrics)
from .config import Config, ConfigError, config_from_dict, unused_options, validate_config
from .data import SPLIT_NAMES, channel_stats, dataset_classes, hold_out, load_dataset
from .loaders import BatchLoader, make_loaders, normalize
from .loops import EvalResult, TrainingDiverged, evaluate, train_epoch
from .manifest import describe_session, end_session, start_session
from .models import NetSpec, build_net, resolve_spec, validate_spec
from .optim import Lookahead, build_ema, build_lookahead, build_optimizer, build_scheduler
from .runtime import Runtime, grad_scaler, restore_rng, rng_state, set_seed
from .whiten import WHITENABLE, whiten_first_conv, whitening_filters, whitening_sample


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
    test: BatchLoader                     # what every epoch is evaluated on: test, or validation
    split: str                            # "test" or "val": metrics columns and log lines say which
    record: InferenceRecord
    sizes: tuple[int, int]                # training and evaluated images
    steps_per_epoch: int
    whiten_filters: torch.Tensor | None = None  # the first conv's start, with optim.whiten


@dataclass
class Learner:
    """What training updates: the net, its optimizer and schedule, the optional EMA."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: torch.optim.swa_utils.AveragedModel | None
    loss_fn: nn.Module
    scaler: torch.amp.GradScaler    # loss scaling under fp16, a pass-through otherwise
    lookahead: Lookahead | None = None

    @property
    def deployed(self) -> nn.Module:
        """The weights that are evaluated and shipped: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model


@dataclass
class TrainedEpoch:
    loss: float
    accuracy: float
    seconds: float


@dataclass
class Progress:
    epoch: int = 0                  # epochs finished
    best_acc: float = -1.0
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_before: float = 0.0     # seconds spent before a resume


def _print_now(line: str) -> None:
    print(line, flush=True)  # logs redirected to a file show each epoch as it ends


def fit(cfg: Config, log: Callable[[str], None] = _print_now, progress: bool = True,
        state: dict[str, Any] | None = None, overwrite: bool = False) -> TrainResult:
    """Train ``cfg`` to its last epoch (or to ``target_accuracy``), from ``state`` if given.
    A run directory that holds another run is refused unless ``overwrite``."""
    start = time.perf_counter()
    spec = checked_spec(cfg)
    rt = Runtime.start(cfg.device, cfg.precision)
    say = log if rt.is_main else (lambda _: None)
    for note in unused_options(cfg):
        say(f"warning: {note}")
    run_dir = Path(cfg.run_dir)
    if rt.is_main:
        prepare_run_dir(run_dir, new_run=state is None, overwrite=overwrite)
        sessions = start_session(run_dir, describe_session(cfg, rt.device, rt.world_size))
    set_seed(cfg.seed, cfg.deterministic)

    data = load_data(cfg, spec, rt, progress and rt.is_main)
    learner = build_learner(cfg, spec, rt, data)
    run = Progress()
    if state is not None:
        run = restore(learner, state)
        say(f"Resumed {run_dir} after epoch {run.epoch}")
    train_model = wrap_for_training(learner.model, cfg, rt)
    say(f"model {cfg.model if isinstance(cfg.model, str) else 'custom'}: "
        f"{sum(p.numel() for p in learner.model.parameters()):,} params | device {rt.device} "
        f"| precision {rt.dtype or torch.float32} | pipeline {cfg.data.pipeline} | "
        f"{data.sizes[0]} train / {data.sizes[1]} {data.split} images | world size {rt.world_size}")

    for epoch in range(run.epoch, cfg.epochs):
        t0 = time.perf_counter()
        trained = train_one_epoch(train_model, learner, data.train_for(epoch), rt, epoch, run_dir,
                                  progress and rt.is_main)
        reached, failure = False, None
        if rt.is_main:
            try:
                reached = end_epoch(cfg, data, learner, run, trained, rt, say, t0, start)
            except Exception as exc:  # told to every rank below, then raised on each
                failure = exc
        reached, failure = rt.share((reached, failure))
        if failure is not None:
            raise failure
        if reached:
            say(f"Reached the target {cfg.target_accuracy}% after epoch {epoch + 1}")
            break

    del train_model  # a DDP wrapper must go before its process group
    rt.finish(learner.model)
    if rt.is_main:
        end_session(run_dir, sessions, time.perf_counter() - start)
    say(f"Done in {time.perf_counter() - start:.1f} s; best {data.split} accuracy {run.best_acc:.2f}%; "
        f"run dir {run_dir}")
    return TrainResult(learner.model, run.history, run.best_acc, run_dir, rt.rank, rt.world_size)


def resume(run_dir: str | Path, log: Callable[[str], None] = _print_now, progress: bool = True) -> TrainResult:
    """Continue the run in ``run_dir`` from its last finished epoch, exactly as it was configured."""
    state = load_checkpoint(Path(run_dir) / "last.pt")
    cfg = config_from_dict(state["config"])
    cfg.run_dir = str(run_dir)
    return fit(cfg, log, progress, state=state)


# ---------------------------------------------------------------- the steps of fit

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
    if cfg.optim.whiten and spec.blocks[0].conv_type[0] not in WHITENABLE:
        raise ConfigError(f"optim.whiten needs a first layer of kind {' or '.join(WHITENABLE)}; "
                          f"this net's is {spec.blocks[0].conv_type[0]!r}")
    return spec


def load_data(cfg: Config, spec: NetSpec, rt: Runtime, progress: bool = False) -> RunData:
    """Training data and what each epoch is evaluated on: the test set, or with ``val_split`` a
    validation split held out of training (recipes are chosen on it; the test set stays unseen)."""
    train, test = load_dataset(cfg.data.path, cfg.data.cache_dir, cfg.data.skip_corrupt, cfg.data.image_size,
                               progress)
    split = "test"
    if cfg.data.val_split:
        train, test = hold_out(train, cfg.data.val_split)
        split = "val"
    stats = channel_stats(train.images)
    train_for, test_loader = make_loaders(cfg, train, test, stats, rt.rank, rt.world_size, rt.device)
    steps = len(train_for(0))
    if steps == 0:
        share = len(train) // rt.world_size
        raise ConfigError(f"{share} training images{' per process' if rt.distributed else ''} make no full batch "
                          f"of batch_size {cfg.batch_size} (the last, partial batch of an epoch is dropped); "
                          f"use --batch_size {max(1, share)} or less")
    record = InferenceRecord(spec.to_dict(), train.classes, stats.mean, stats.std, cfg.data.image_size,
                             tta=cfg.tta, tta_shift=cfg.tta_shift)
    filters = None
    if cfg.optim.whiten:  # from the training images only: a validation split stays unseen
        sample = normalize(torch.from_numpy(whitening_sample(train.images)).permute(0, 3, 1, 2), stats)
        first = spec.blocks[0]
        filters = whitening_filters(sample, first.kernel_size[0], first.dilation[0])
    return RunData(train_for, test_loader, split, record, (len(train), len(test)), steps, filters)


def build_learner(cfg: Config, spec: NetSpec, rt: Runtime, data: RunData) -> Learner:
    model = build_net(spec, check=False)  # validated in checked_spec
    if data.whiten_filters is not None:  # before the optimizer, which leaves the frozen filters out
        whiten_first_conv(model, data.whiten_filters)
    model = model.to(rt.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optim, model)
    total_steps = cfg.epochs * data.steps_per_epoch
    scheduler = build_scheduler(cfg.optim, optimizer, total_steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
    return Learner(model, optimizer, scheduler, build_ema(cfg.optim, model), loss_fn, grad_scaler(rt),
                   build_lookahead(cfg.optim, model, total_steps))


def restore(learner: Learner, state: dict[str, Any]) -> Progress:
    """Put a checkpoint's weights, optimizer, schedule, EMA and RNG states back; its progress."""
    learner.model.load_state_dict(state["model"])
    learner.optimizer.load_state_dict(state["optimizer"])
    learner.scheduler.load_state_dict(state["scheduler"])
    if learner.ema is not None and state.get("ema_full"):
        learner.ema.load_state_dict(state["ema_full"])
    if state.get("scaler"):
        learner.scaler.load_state_dict(state["scaler"])
    if learner.lookahead is not None:
        learner.lookahead.load_state_dict(state["lookahead"])
    restore_rng(state["rng"])
    history = state["history"]
    return Progress(state["epoch"], state["best_acc"], history, history[-1]["elapsed_s"] if history else 0.0)


def wrap_for_training(model: nn.Module, cfg: Config, rt: Runtime) -> nn.Module:
    """DDP under torchrun, then ``torch.compile`` if asked; the bare model stays for evaluation."""
    if rt.distributed:
        model = nn.parallel.DistributedDataParallel(model)
    return torch.compile(model) if cfg.compile else model


def train_one_epoch(model: nn.Module, learner: Learner, loader: Iterable, rt: Runtime, epoch: int,
                    run_dir: Path, progress: bool) -> TrainedEpoch:
    t0 = time.perf_counter()
    try:
        loss, acc = train_epoch(model, loader, learner.optimizer, learner.scheduler, learner.loss_fn, rt,
                                learner.ema, progress, learner.scaler, learner.lookahead)
    except TrainingDiverged as exc:
        kept = run_dir / "last.pt"
        raise TrainingDiverged(
            f"training stopped in epoch {epoch + 1}: {exc}. Lower the learning rate or check the data; "
            + (f"the last good checkpoint {kept} (epoch {epoch}) is kept." if kept.exists() else
               "no checkpoint had been written yet.")) from None
    return TrainedEpoch(loss, acc, time.perf_counter() - t0)


def end_epoch(cfg: Config, data: RunData, learner: Learner, run: Progress, trained: TrainedEpoch,
              rt: Runtime, say: Callable[[str], None], t0: float, start: float) -> bool:
    """Rank 0's end of an epoch: evaluate (every ``eval_every`` epochs and after the last), log,
    write the run's files; whether the target is reached."""
    epoch = run.epoch + 1
    result = None
    if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
        result = evaluate(learner.deployed, data.test, rt, cfg.tta, cfg.tta_shift)
        say(result.line(SPLIT_NAMES[data.split]))
    row = record_epoch(run, trained, result, data.split, learner.optimizer.param_groups[0]["lr"], t0, start)
    tested = (f"{data.split} loss {result.loss:.4f} acc {result.accuracy:.2f}%" if result is not None
              else f"{data.split} not evaluated")
    say(f"Epoch {run.epoch}/{cfg.epochs}: train loss {trained.loss:.4f} acc {trained.accuracy:.2f}% | "
        f"{tested} | {row['epoch_s']:.1f} s (elapsed {row['elapsed_s']:.1f} s)")
    is_best = result is not None and result.accuracy >= run.best_acc
    save_run(Path(cfg.run_dir), cfg, learner, run, data.record, is_best=is_best)
    return result is not None and cfg.target_accuracy is not None and result.accuracy >= cfg.target_accuracy


def record_epoch(run: Progress, trained: TrainedEpoch, result: EvalResult | None, split: str, lr: float,
                 t0: float, start: float) -> dict[str, Any]:
    """Add the epoch's row to the history (the row ``metrics.csv`` gets; ``split`` names the
    evaluated columns, empty in an epoch that was not evaluated); ``t0``: when the epoch began,
    ``start``: when this process began."""
    now = time.perf_counter()
    run.epoch += 1
    row = {
        "epoch": run.epoch, "train_loss": round(trained.loss, 5), "train_acc": round(trained.accuracy, 3),
        f"{split}_loss": round(result.loss, 5) if result is not None else None,
        f"{split}_acc": round(result.accuracy, 3) if result is not None else None, "lr": lr,
        "train_s": round(trained.seconds, 2), "epoch_s": round(now - t0, 2),
        "elapsed_s": round(run.elapsed_before + now - start, 2),
    }
    run.history.append(row)
    if result is not None:
        run.best_acc = max(run.best_acc, result.accuracy)
    return row


def save_run(run_dir: Path, cfg: Config, learner: Learner, run: Progress, record: InferenceRecord,
             is_best: bool) -> None:
    """``last.pt`` (and ``best.pt`` when ``is_best``), then the metrics files."""
    ema = learner.ema
    state = {
        "model": learner.model.state_dict(),
        "ema": ema.module.state_dict() if ema is not None else None,  # the averaged weights, to deploy
        "record": record.to_dict(), "config": cfg.to_dict(),
        "epoch": run.epoch, "history": run.history, "best_acc": run.best_acc,
        "optimizer": learner.optimizer.state_dict(), "scheduler": learner.scheduler.state_dict(),
        "ema_full": ema.state_dict() if ema is not None else None,  # the EMA's own state, to resume
        "scaler": learner.scaler.state_dict(), "rng": rng_state(),
        "lookahead": learner.lookahead.state_dict() if learner.lookahead is not None else None,
    }
    save_checkpoint(run_dir / "last.pt", state)
    if is_best:
        save_checkpoint(run_dir / "best.pt", state)
    provenance = {"epoch": run.epoch, "epochs": cfg.epochs, "metrics": run.history[-1], "config": cfg.to_dict()}
    save_weights(run_dir / WEIGHTS, learner.deployed.state_dict(), record, provenance)
    write_metrics(run_dir, run.history)
