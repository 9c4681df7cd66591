"""Training: one loop for every recipe, atomic checkpoints, resume, data-parallel runs.

``fit(cfg)`` is the whole job: data, model, optimizer and schedule from the config, then
epochs of ``train_epoch`` + ``evaluate``, writing ``metrics.csv``/``metrics.json``,
``last.pt`` (every epoch) and ``best.pt`` into ``cfg.run_dir``. Launched by ``torchrun``
it trains data-parallel (gloo on CPU, nccl on GPU); only rank 0 logs and writes.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import os
import random
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from .config import Config, config_from_dict, validate_config
from .data import (
    AlbumentationsDataset,
    ArrayDataset,
    BatchLoader,
    albumentations_transform,
    channel_stats,
    epoch_seed,
    load_cifar10,
    seed_albumentations_worker,
)
from .models import NetSpec, build_net, get_spec, validate_spec


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or written; the message names the file."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


# ---------------------------------------------------------------- environment

def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 math (AVX512-BF16 or AMX); elsewhere bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the hardware does bf16 natively, else fp32 (None)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_supports_bf16() else None


def set_seed(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


# ---------------------------------------------------------------- checkpoints

def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupt?): "
                              f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not an advconv checkpoint (no model/config inside)")
    return state


def model_from_checkpoint(state: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network (eval mode) and the facts needed to feed it (classes, mean, std)."""
    model = build_net(NetSpec.from_dict(state["spec"]))
    weights = state.get("ema") or state["model"]
    model.load_state_dict(weights)
    return model.eval(), {k: state[k] for k in ("classes", "mean", "std")}


# ---------------------------------------------------------------- optimizer and schedule

def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying BN scales and biases only hurts."""
    o = cfg.optim
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr)
    return torch.optim.AdamW(groups, lr=o.lr)


def lr_multiplier(schedule: str, warmup: float, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base lr at a step: linear warmup, then the named decay."""
    warm = max(1, int(warmup * total_steps))

    def at(step: int) -> float:
        if schedule == "constant":
            return 1.0
        if schedule == "step":
            return 0.1 ** sum(step >= total_steps * f for f in (0.5, 0.75))
        if step < warm:
            return (step + 1) / warm
        frac = (step - warm) / max(1, total_steps - warm)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        return max(0.0, 1.0 - frac)  # linear

    return at


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, total_steps: int):
    o = cfg.optim
    if o.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=o.lr, total_steps=total_steps, pct_start=o.warmup,
            cycle_momentum=o.name == "sgd" and o.momentum > 0,
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(o.schedule, o.warmup, total_steps))


# ---------------------------------------------------------------- loops

def train_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, scheduler,
                loss_fn: nn.Module, device: torch.device, dtype: torch.dtype | None,
                ema: nn.Module | None = None, progress: bool = True) -> tuple[float, float]:
    """One pass over the training data; returns (mean loss, accuracy %)."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, disable=not progress, dynamic_ncols=True, leave=True)
    for batch_id, (x, y) in enumerate(bar):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, dtype):
            logits = model(x)
            loss = loss_fn(logits.float(), y)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss.item()} at batch {batch_id}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_description(f"Train: Loss={loss.item():.2f} Batch_id={batch_id} "
                            f"Accuracy={100 * correct / seen:.2f}")
    return total_loss / max(seen, 1), 100 * correct / max(seen, 1)


@dataclass
class EvalResult:
    loss: float
    correct: int
    total: int
    predictions: torch.Tensor
    targets: torch.Tensor

    @property
    def accuracy(self) -> float:
        return 100 * self.correct / max(self.total, 1)

    def line(self) -> str:
        return (f"Test set: Average loss: {self.loss:.4f}, Accuracy: {self.correct}/{self.total} "
                f"({self.accuracy:.2f}%)")


def tta_views(x: torch.Tensor, flip: bool, shift: int = 0) -> list[torch.Tensor]:
    """The test-time views of a batch: itself, its mirror (``flip``), and each of those moved
    ``shift`` pixels down-right and up-left (reflected borders, as ``translate`` trains)."""
    size = x.shape[-1]
    if not 0 <= shift < size:
        raise ValueError(f"tta_shift must be in [0, {size - 1}] for {size}x{size} images, got {shift}")
    views = [x, x.flip(3)] if flip else [x]
    if shift:
        padded = [nn.functional.pad(v, (shift,) * 4, mode="reflect") for v in views]
        views += [p[..., o:o + size, o:o + size] for p in padded for o in (0, 2 * shift)]
    return views


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device, dtype: torch.dtype | None,
             tta: bool = False, tta_shift: int = 0) -> EvalResult:
    """Mean loss and accuracy over a loader; logits are averaged over ``tta_views``."""
    model.eval()
    total_loss, preds, targets = 0.0, [], []
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, dtype):
            views = tta_views(x, tta, tta_shift)
            logits = sum(model(v).float() for v in views) / len(views)
        total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1).cpu())
        targets.append(y.cpu())
    preds, targets = torch.cat(preds), torch.cat(targets)
    return EvalResult(total_loss / max(len(targets), 1), int((preds == targets).sum()), len(targets),
                      preds, targets)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


# ---------------------------------------------------------------- data

def make_loaders(cfg: Config, train: ArrayDataset, test: ArrayDataset, mean, std,
                 dist_info: DistInfo = DistInfo()):
    """(train loader factory by epoch, test loader) for the configured pipeline."""
    a = cfg.augment
    test_loader = BatchLoader(test, mean, std, cfg.batch_size, train=False, channels_last=cfg.channels_last)
    if cfg.data.pipeline == "batched":
        loader = BatchLoader(train, mean, std, cfg.batch_size, train=True, seed=cfg.seed,
                             translate=a.translate, hflip=a.hflip, alternate_flip=a.alternate_flip,
                             cutout=a.cutout, cutout_size=a.cutout_size,
                             channels_last=cfg.channels_last, rank=dist_info.rank,
                             world_size=dist_info.world_size)

        def for_epoch(epoch: int):
            loader.set_epoch(epoch)
            return loader
        return for_epoch, test_loader

    transform = albumentations_transform(mean, std, True, a.hflip, a.affine, a.shift, a.scale, a.rotate,
                                         a.cutout, a.cutout_size)
    dataset = AlbumentationsDataset(train, transform)

    def for_epoch(epoch: int):
        g = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
        transform.set_random_seed(epoch_seed(cfg.seed, epoch))
        sampler = None
        if dist_info.world_size > 1:
            sampler = torch.utils.data.DistributedSampler(dataset, dist_info.world_size, dist_info.rank,
                                                          seed=cfg.seed, drop_last=True)
            sampler.set_epoch(epoch)
        return torch.utils.data.DataLoader(
            dataset, cfg.batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True,
            num_workers=cfg.data.workers, generator=g, worker_init_fn=seed_albumentations_worker,
            persistent_workers=False,
        )
    return for_epoch, test_loader


# ---------------------------------------------------------------- the job

def _write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_bytes(run_dir / "metrics.json", json.dumps(history, indent=1).encode())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(run_dir / "metrics.csv", buf.getvalue().encode())


def _print_now(line: str) -> None:
    print(line, flush=True)  # logs redirected to a file show each epoch as it ends


def fit(cfg: Config, resume: bool = False, log: Callable[[str], None] = _print_now,
        progress: bool = True) -> dict[str, Any]:
    """Train ``cfg`` to the end (or to ``target_accuracy``); returns the final metrics."""
    start = time.perf_counter()
    run_dir = Path(cfg.run_dir)
    device = resolve_device(cfg.device)
    dist_info = init_distributed(device)
    if dist_info.world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    say = log if dist_info.is_main else (lambda _: None)

    state = load_checkpoint(run_dir / "last.pt") if resume else None
    if state is not None:
        cfg = config_from_dict(state["config"])
    validate_config(cfg)
    spec = get_spec(cfg.model) if isinstance(cfg.model, str) else NetSpec.from_dict(cfg.model)
    validate_spec(spec, max_params=cfg.max_params)
    if dist_info.is_main:
        _check_run_dir_writable(run_dir)
    set_seed(cfg.seed, cfg.deterministic)

    train, test = load_cifar10(cfg.data.path, cfg.data.cache_dir, cfg.data.skip_corrupt)
    mean, std = channel_stats(train.images)
    train_loader_for, test_loader = make_loaders(cfg, train, test, mean, std, dist_info)

    model = build_net(spec, check=False).to(device)  # validated above, before the data was read
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    dtype = autocast_dtype(cfg.precision, device)
    optimizer = build_optimizer(cfg, model)
    steps_per_epoch = len(train_loader_for(0))
    scheduler = build_scheduler(cfg, optimizer, cfg.epochs * steps_per_epoch)
    ema = None
    if cfg.optim.ema > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.optim.ema), use_buffers=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)

    history: list[dict[str, Any]] = []
    first_epoch, best_acc, elapsed_before = 0, -1.0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema_full"):
            ema.load_state_dict(state["ema_full"])
        history, first_epoch, best_acc = state["history"], state["epoch"], state["best_acc"]
        elapsed_before = history[-1]["elapsed_s"] if history else 0.0
        _restore_rng(state["rng"])
        say(f"Resumed {run_dir} after epoch {first_epoch}")

    train_model = model
    if dist_info.world_size > 1:
        train_model = nn.parallel.DistributedDataParallel(model)
    if cfg.compile:
        train_model = torch.compile(train_model)
    eval_model = ema.module if ema is not None else model

    n_params = sum(p.numel() for p in model.parameters())
    say(f"model {cfg.model if isinstance(cfg.model, str) else 'custom'}: {n_params:,} params | device {device} "
        f"| precision {dtype or torch.float32} | pipeline {cfg.data.pipeline} | "
        f"{len(train)} train / {len(test)} test images | world size {dist_info.world_size}")

    for epoch in range(first_epoch, cfg.epochs):
        t0 = time.perf_counter()
        try:
            train_loss, train_acc = train_epoch(train_model, train_loader_for(epoch), optimizer, scheduler,
                                                loss_fn, device, dtype, ema, progress=progress and dist_info.is_main)
        except TrainingDiverged as exc:
            kept = run_dir / "last.pt"
            raise TrainingDiverged(
                f"training stopped in epoch {epoch + 1}: {exc}. Lower the learning rate or check the data; "
                + (f"the last good checkpoint {kept} (epoch {epoch}) is kept." if kept.exists() else
                   "no checkpoint had been written yet.")) from None
        train_s = time.perf_counter() - t0
        stop = False
        if dist_info.is_main:
            result = evaluate(eval_model, test_loader, device, dtype, cfg.tta, cfg.tta_shift)
            say(result.line())
            row = {
                "epoch": epoch + 1, "train_loss": round(train_loss, 5), "train_acc": round(train_acc, 3),
                "test_loss": round(result.loss, 5), "test_acc": round(result.accuracy, 3),
                "lr": optimizer.param_groups[0]["lr"], "train_s": round(train_s, 2),
                "epoch_s": round(time.perf_counter() - t0, 2),
                "elapsed_s": round(elapsed_before + time.perf_counter() - start, 2),
            }
            history.append(row)
            say(f"Epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f} acc {train_acc:.2f}% | "
                f"test loss {result.loss:.4f} acc {result.accuracy:.2f}% | {row['epoch_s']:.1f} s "
                f"(elapsed {row['elapsed_s']:.1f} s)")
            best_acc = max(best_acc, result.accuracy)
            ckpt = {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history,
                "best_acc": best_acc, "config": cfg.to_dict(), "spec": spec.to_dict(),
                "classes": train.classes, "mean": mean, "std": std, "rng": _rng_state(),
                # "ema": the averaged weights to deploy; "ema_full": its state, to resume
                "ema": ema.module.state_dict() if ema is not None else None,
                "ema_full": ema.state_dict() if ema is not None else None,
            }
            save_checkpoint(run_dir / "last.pt", ckpt)
            if result.accuracy >= best_acc:
                save_checkpoint(run_dir / "best.pt", ckpt)
            try:
                _write_metrics(run_dir, history)
            except OSError as exc:
                raise CheckpointError(f"cannot write metrics in {run_dir}: {exc.strerror or exc}") from exc
            stop = cfg.target_accuracy is not None and result.accuracy >= cfg.target_accuracy
        if dist_info.world_size > 1:
            flag = [stop]
            dist.broadcast_object_list(flag, src=0)
            stop = flag[0]
        if stop:
            say(f"Reached the target {cfg.target_accuracy}% after epoch {epoch + 1}")
            break

    if dist_info.world_size > 1:
        # parameters stay equal through DDP's gradient all-reduce; BN running stats are per rank:
        # hand every rank rank 0's, the ones that were evaluated and saved
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
        dist.barrier()
        del train_model  # the DDP reducer must go before its process group, or gloo can abort at exit
        gc.collect()
        dist.destroy_process_group()
    final = history[-1] if history else {}
    say(f"Done in {time.perf_counter() - start:.1f} s; best test accuracy {best_acc:.2f}%; run dir {run_dir}")
    return {"best_acc": best_acc, "history": history, "final": final, "model": model, "run_dir": str(run_dir),
            "rank": dist_info.rank, "world_size": dist_info.world_size}


def _check_run_dir_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir):
            pass
    except OSError as exc:
        raise CheckpointError(f"run directory {run_dir} is not writable: {exc.strerror or exc}") from exc


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
