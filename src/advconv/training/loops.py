"""The training loop, with the course's tqdm line (scoring, with its test line, is in scoring.py)."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from tqdm import tqdm

from ..errors import TrainingDiverged
from ..runtime import Runtime


def train_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, scheduler,
                loss_fn: nn.Module, rt: Runtime, ema: nn.Module | None = None,
                progress: bool = True, scaler: torch.amp.GradScaler | None = None) -> tuple[float, float]:
    """One pass over the training data, stepping the scheduler every batch; (mean loss, accuracy %).
    ``scaler`` scales the loss for fp16; ``ema`` averages the weights after each step."""
    scaler = scaler or torch.amp.GradScaler(rt.device.type, enabled=False)
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, disable=not progress, dynamic_ncols=True, leave=True)
    for batch_id, (x, y) in enumerate(bar):
        x, y = x.to(rt.device, non_blocking=True), y.to(rt.device, non_blocking=True)
        logits, loss = train_step(model, x, y, optimizer, loss_fn, rt, scaler, batch_id)
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        total_loss += loss.item() * len(y)
        labels = y.argmax(1) if y.ndim > 1 else y  # mixed targets: the class with the larger share
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(y)
        bar.set_description(f"Train: Loss={loss.item():.2f} Batch_id={batch_id} "
                            f"Accuracy={100 * correct / seen:.2f}")
    return total_loss / max(seen, 1), 100 * correct / max(seen, 1)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
               loss_fn: nn.Module, rt: Runtime, scaler: torch.amp.GradScaler, batch_id: int = 0):
    """One optimizer step on a batch; (logits, loss). TrainingDiverged when the loss is not finite
    (on any process)."""
    with rt.autocast:
        logits = model(x)
        loss = loss_fn(logits.float(), y)
    checked = rt.loss_everywhere(loss)
    if not torch.isfinite(checked):
        raise TrainingDiverged(f"loss became {checked.item()} at batch {batch_id}")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return logits, loss
