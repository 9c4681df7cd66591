"""Distillation: a trained teacher's class probabilities become part of the student's targets.

Each training image's target is ``teacher_weight`` x the teacher's probabilities plus the rest
on its label. The teacher looks at each image once, unaugmented and mirrored (its logits
averaged), and those probabilities are cached, keyed by the teacher's weights and the images:
a student pays for the teacher's forward passes once, not every epoch. A per-batch teacher
would score each augmented view exactly, but its forward pass on every step takes longer on a
CPU than the small student's whole step.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..data.cache import cache_dir_of, cached_arrays
from ..data.datasets import ArrayDataset
from ..errors import ConfigError
from ..runtime import Runtime
from ..trained.hub import TrainedModel, load_model
from ..trained.inference import preprocess
from ..trained.views import TestTimeViews

CHUNK = 500        # images per teacher forward pass
CACHE_VERSION = 1  # bump when what the cached probabilities mean changes


def distilled_targets(cfg: Config, train: ArrayDataset, rt: Runtime) -> tuple[torch.Tensor, str]:
    """(N, classes) training targets mixing each label with ``cfg.distill.teacher``'s
    probabilities, and the line the log shows."""
    d = cfg.distill
    teacher = load_model(d.teacher)
    check_teacher(teacher, cfg, train)
    start = time.perf_counter()
    probs, cached = teacher_probabilities(teacher, train, d.temperature, rt, cfg.data.cache_dir)
    labels = torch.nn.functional.one_hot(torch.from_numpy(train.labels), len(train.classes)).float()
    agree = (probs.argmax(1) == torch.from_numpy(train.labels)).float().mean().item()
    note = (f"note: distilling from {d.teacher} (teacher_weight {d.teacher_weight:g}, temperature "
            f"{d.temperature:g}); its probabilities for the {len(train)} training images "
            f"{'read from the cache' if cached else 'computed'} in {time.perf_counter() - start:.1f} s; "
            f"it agrees with {100 * agree:.2f}% of their labels")
    return (1 - d.teacher_weight) * labels + d.teacher_weight * probs, note


def check_teacher(teacher: TrainedModel, cfg: Config, train: ArrayDataset) -> None:
    """A teacher must know the same classes at the same image size, and must not have trained
    on the validation split this run is scored on (it would carry those labels into the student)."""
    record = teacher.record
    if tuple(record.classes) != tuple(train.classes):
        raise ConfigError(f"distill.teacher {cfg.distill.teacher} predicts the classes {', '.join(record.classes)}; "
                          f"the data has {', '.join(train.classes)}")
    if record.input_size != cfg.data.image_size:
        raise ConfigError(f"distill.teacher {cfg.distill.teacher} takes {record.input_size}-pixel images; "
                          f"data.image_size is {cfg.data.image_size}")
    if not cfg.data.val_split:
        return
    data = teacher.data_config
    path = data.get("path")
    same_split = (data.get("val_split") == cfg.data.val_split and path is not None
                  and Path(path).resolve() == Path(cfg.data.path or "").resolve())
    if not same_split:
        raise ConfigError(f"distill.teacher {cfg.distill.teacher} was not trained with this run's validation split "
                          f"held out (its data {path}, val_split {data.get('val_split')}): it may have seen the "
                          f"images this run is scored on; train it with --data {cfg.data.path} "
                          f"--val_split {cfg.data.val_split}")


@torch.no_grad()
def teacher_probabilities(teacher: TrainedModel, data: ArrayDataset, temperature: float, rt: Runtime,
                          cache_dir: str | Path | None = None) -> tuple[torch.Tensor, bool]:
    """(N, classes) softmax of the teacher's logits / ``temperature``, averaged over each image and its
    mirror, and whether they came from the cache."""
    net = TestTimeViews(teacher.net.to(rt.device).eval(), flip=True)
    computed = []

    def build() -> dict[str, np.ndarray]:
        out = []
        for chunk in np.array_split(data.images, max(1, -(-len(data) // CHUNK))):
            with rt.autocast:
                logits = net(preprocess(chunk, teacher.record.stats).to(rt.device))
            out.append(torch.softmax(logits.float() / temperature, 1).cpu())
        computed.append(True)
        return {"probs": torch.cat(out).numpy()}

    key = _cache_key(teacher, data, temperature)
    arrays = cached_arrays(cache_dir_of(cache_dir) / f"teacher-{key}.npz", build)
    return torch.from_numpy(arrays["probs"]), not computed


def _cache_key(teacher: TrainedModel, data: ArrayDataset, temperature: float) -> str:
    """What the probabilities depend on: the teacher's weights and input statistics, the images
    (in order) and the temperature."""
    digest = hashlib.sha1(f"{CACHE_VERSION}|{temperature!r}|{teacher.record.mean}|{teacher.record.std}".encode())
    for name, tensor in teacher.net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(np.ascontiguousarray(data.images).tobytes())
    return digest.hexdigest()[:16]
