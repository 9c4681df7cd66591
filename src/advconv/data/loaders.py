"""From uint8 arrays to augmented, normalized batches: the two pipelines and their assembly.

``albumentations``: the course's per-image pipeline (``AlbumentationsDataset`` in a
DataLoader), any transform albumentations has. ``batched``: ``BatchLoader`` augments whole
batches with torch ops (flip, translate, cutout) in the training process, with no worker
processes competing for a small CPU's cores. Both draw their randomness from (seed, epoch)
alone, so a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import AlbumentationsConfig, AugmentConfig, BatchedConfig, Config
from .datasets import ArrayDataset, ChannelStats


def normalize(images: torch.Tensor, stats: ChannelStats) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float, normalized with the per-channel mean/std: the one place
    training, evaluation and inference turn pixels into inputs."""
    mean = torch.as_tensor(stats.mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1) * 255
    std = torch.as_tensor(stats.std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1) * 255
    return (images.float() - mean) / std


def flip_phases(n: int, seed: int) -> torch.Tensor:
    """Alternating flip (airbench): each of ``n`` images is mirrored in every other epoch, from
    a random start, so two consecutive epochs always show both views instead of a coin flip's
    repeats. This draws the starts; ``mirrored`` applies them."""
    return torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed))


def mirrored(phase, epoch: int):
    """Which images (by their ``flip_phases``, a tensor or an array) an alternating flip mirrors
    in ``epoch``."""
    return (phase + epoch) % 2 == 1


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """The seed of one epoch's shuffle or augmentation: a function of (seed, epoch) alone, so a
    resumed run draws exactly what an uninterrupted one would."""
    return seed * 100_003 + epoch + 7_919 * stream


# ---------------------------------------------------------------- albumentations (per image)

def albumentations_transform(stats: ChannelStats, aug: AugmentConfig, affine: AlbumentationsConfig, train: bool):
    """The course pipeline: flip, shift-scale-rotate (Affine), cutout filled with the mean, to a
    uint8 (C, H, W) tensor. ``normalize`` follows on whole batches (``Normalized``): per image it
    was a large share of the pipeline's time, and it keeps one home for turning pixels into inputs.
    With ``aug.alternate_flip`` the flip is left to ``AlbumentationsDataset``, which knows the epoch."""
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    steps = []
    if train:
        fill = tuple(255.0 * m for m in stats.mean)
        size = aug.cutout_size
        steps += [] if aug.alternate_flip else [A.HorizontalFlip(p=aug.hflip)]
        steps += [
            A.Affine(translate_percent=(-affine.shift, affine.shift), scale=(1 - affine.scale, 1 + affine.scale),
                     rotate=(-affine.rotate, affine.rotate), fill=fill, p=affine.affine),
            A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(size, size),
                            hole_width_range=(size, size), fill=fill, p=aug.cutout),
        ]
    return A.Compose(steps + [ToTensorV2()])


class AlbumentationsDataset(Dataset):
    """(uint8 image, label) pairs from an ArrayDataset through an albumentations pipeline; with
    ``flip_phase`` (``flip_phases``) each image is first mirrored in every other epoch
    (``set_epoch``) instead of by the pipeline's coin; with ``targets`` (one row of class
    probabilities per image) the label is that row."""

    def __init__(self, data: ArrayDataset, transform, flip_phase: np.ndarray | None = None,
                 targets: torch.Tensor | None = None) -> None:
        self.data, self.transform, self.flip_phase, self.targets = data, transform, flip_phase, targets
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.data.images[i]
        if self.flip_phase is not None and mirrored(self.flip_phase[i], self.epoch):
            image = np.ascontiguousarray(image[:, ::-1])
        label = self.targets[i] if self.targets is not None else int(self.data.labels[i])
        return self.transform(image=image)["image"], label


class Normalized:
    """A loader of uint8 batches, normalized as whole batches (in the layout the net runs in)."""

    def __init__(self, loader: Iterable, stats: ChannelStats, channels_last: bool) -> None:
        self.loader, self.stats, self.channels_last = loader, stats, channels_last

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        for x, y in self.loader:
            yield normalize(x, self.stats).contiguous(memory_format=layout), y


def seed_albumentations_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own albumentations stream derived from torch's seed."""
    info = torch.utils.data.get_worker_info()
    info.dataset.transform.set_random_seed(info.seed % 2**32)


# ---------------------------------------------------------------- batched (torch ops)

class BatchLoader:
    """Shuffled, augmented, normalized batches from uint8 tensors held in memory.

    Randomness comes from ``seed`` and the epoch number alone, so a resumed run sees the
    same batches as an uninterrupted one. ``rank``/``world_size`` shard each epoch's
    permutation for data-parallel training. ``aug`` and ``batched`` (the config's sections) are
    used when ``train`` is true; ``targets`` (one row of class probabilities per image) replace
    the labels there. On a GPU ``device`` keeps the uint8 images there and augments them there:
    no copy per batch.
    """

    def __init__(self, data: ArrayDataset, stats: ChannelStats, batch_size: int, train: bool,
                 aug: AugmentConfig | None = None, batched: BatchedConfig | None = None, seed: int = 0,
                 channels_last: bool = True,
                 rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu",
                 targets: torch.Tensor | None = None) -> None:
        self.device = torch.device(device)
        self.images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous().to(self.device)  # N,C,H,W
        self.labels = torch.from_numpy(data.labels).to(self.device)
        self.targets = targets.to(self.device) if targets is not None and train else None
        self.num_classes = len(data.classes)
        self.stats, self.batch_size, self.train, self.seed = stats, batch_size, train, seed
        self.aug = aug if aug is not None else AugmentConfig()
        self.batched = batched if batched is not None else BatchedConfig()
        self.flip_phase = flip_phases(len(self.labels), seed).to(self.device)
        self.channels_last = channels_last
        self.drop_last = train
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(self.device).manual_seed(seed)

    def _indices(self) -> torch.Tensor:
        n = len(self.labels)
        if not self.train:
            return torch.arange(n, device=self.device)[self.rank::self.world_size]
        g = self._generator(epoch_seed(self.seed, self.epoch))
        return torch.randperm(n, generator=g, device=self.device)[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(range(self.rank, len(self.labels), self.world_size))  # this rank's share
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self._indices()
        g = self._generator(epoch_seed(self.seed, self.epoch, stream=self.rank + 1))
        for b in range(len(self)):
            sel = idx[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.images[sel]
            if self.train:
                if self.aug.alternate_flip:
                    flip = mirrored(self.flip_phase[sel], self.epoch)
                else:
                    flip = torch.rand(len(sel), generator=g, device=self.device) < self.aug.hflip
                x = self.augment(x, flip, g)
            x = normalize(x, self.stats)
            if self.train and self.batched.downsample > 0:
                x = self._downsample(x, g)
            if self.train and self.aug.cutout > 0:
                x = x.masked_fill(self._cutout_mask(x, g), 0.0)  # 0 == the dataset mean after normalizing
            y = self.labels[sel] if self.targets is None else self.targets[sel]
            if self.train and (self.batched.mixup > 0 or self.batched.cutmix > 0):
                x, y = self._mix(x, y, g)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y

    def augment(self, x: torch.Tensor, flip: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Mirror the ``flip`` images and translate all (reflect-padded crop) of a uint8 batch."""
        n, _, h, w = x.shape
        if flip.any():
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        t = self.batched.translate
        if t > 0:
            padded = torch.nn.functional.pad(x.float(), (t, t, t, t), mode="reflect").to(torch.uint8)
            dy, dx = (torch.randint(0, 2 * t + 1, (n,), generator=g, device=self.device) for _ in range(2))
            rows = (dy.view(-1, 1) + torch.arange(h, device=self.device)).view(n, 1, h, 1).expand(
                n, x.shape[1], h, w + 2 * t)
            x = padded.gather(2, rows)
            cols = (dx.view(-1, 1) + torch.arange(w, device=self.device)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
            x = x.gather(3, cols)
        return x

    def _downsample(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """A random share ``batched.downsample`` of a float batch shown at one lower resolution, drawn
        per batch from [downsample_min, full size): shrunk (antialiased) and stretched back.
        Pixel-exact shifts and flips never blur; interpolation does, as a camera's focus or a
        resized photo does."""
        n, _, h, w = x.shape
        chosen = torch.rand(n, generator=g, device=self.device) < self.batched.downsample
        size = int(torch.randint(self.batched.downsample_min, h, (1,), generator=g, device=self.device))
        if not chosen.any():
            return x
        x = x.clone()
        x[chosen] = resized(resized(x[chosen], (size, size * w // h)), (h, w))
        return x

    def _mix(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """MixUp (a weighted average of each image and a partner's) or CutMix (a box of the
        partner's pasted in), one of the two per batch when both are on; the partners are a
        shuffle of the batch and the weight is drawn from Beta(a, a). The targets become class
        probabilities in the same proportions (for CutMix, the share of the image each fills)."""
        n, _, h, w = x.shape
        cut = self.batched.cutmix > 0 and (self.batched.mixup == 0 or
                                           float(torch.rand(1, generator=g, device=self.device)) < 0.5)
        alpha = self.batched.cutmix if cut else self.batched.mixup
        seed = int(torch.randint(2**31 - 1, (1,), generator=g, device=self.device))
        keep = float(np.random.default_rng(seed).beta(alpha, alpha))  # torch's Beta takes no generator
        partner = torch.randperm(n, generator=g, device=self.device)
        if cut:
            side_h, side_w = int(h * (1 - keep) ** 0.5), int(w * (1 - keep) ** 0.5)
            cy, cx = (int(torch.randint(0, size, (1,), generator=g, device=self.device)) for size in (h, w))
            top, bottom = max(cy - side_h // 2, 0), min(cy + side_h - side_h // 2, h)
            left, right = max(cx - side_w // 2, 0), min(cx + side_w - side_w // 2, w)
            x = x.clone()
            x[:, :, top:bottom, left:right] = x[partner, :, top:bottom, left:right]
            keep = 1 - (bottom - top) * (right - left) / (h * w)
        else:
            x = keep * x + (1 - keep) * x[partner]
        probs = y if y.ndim > 1 else torch.nn.functional.one_hot(y, self.num_classes).float()
        return x, keep * probs + (1 - keep) * probs[partner]

    def _cutout_mask(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        apply = torch.rand(n, generator=g, device=self.device) < self.aug.cutout
        cy = torch.randint(0, h, (n,), generator=g, device=self.device).view(-1, 1, 1)
        cx = torch.randint(0, w, (n,), generator=g, device=self.device).view(-1, 1, 1)
        size, half = self.aug.cutout_size, self.aug.cutout_size // 2
        ys, xs = torch.arange(h, device=self.device).view(1, -1, 1), torch.arange(w, device=self.device).view(1, 1, -1)
        inside = lambda pos, c: (pos - c + half >= 0) & (pos - c + half < size)  # noqa: E731
        mask = inside(ys, cy) & inside(xs, cx) & apply.view(-1, 1, 1)
        return mask.unsqueeze(1)


def resized(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A float batch resized to ``size`` (bilinear; antialiased when shrinking, so that fine
    detail averages out as it does in a photo taken from farther away), in its memory layout."""
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=size[0] < x.shape[-2],
                                          align_corners=False)
    return out.contiguous(memory_format=layout)


# ---------------------------------------------------------------- assembly

def loader_workers(workers: int | None, cpus: int | None = None) -> int:
    """DataLoader worker processes: as configured, or by the CPU count. On 2 cores, workers and
    torch's threads compete for the same cores and augmenting in the training process is
    faster (measured in the project's lab); with more cores, workers overlap the step."""
    if workers is not None:
        return workers
    cpus = cpus or os.cpu_count() or 1
    return 0 if cpus <= 2 else min(4, cpus - 1)


def make_loaders(cfg: Config, train: ArrayDataset, scored: ArrayDataset, stats: ChannelStats,
                 rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu",
                 targets: torch.Tensor | None = None) -> tuple[Callable[[int], Iterable], BatchLoader]:
    """(the training loader of an epoch, by epoch number; the loader of ``scored``, what each epoch
    is evaluated on: the test set or a validation split) for ``cfg``'s pipeline,
    training on ``targets`` (class probabilities per training image) instead of the labels when
    given. On a CUDA ``device`` the batched pipeline holds the images there."""
    device = device if torch.device(device).type == "cuda" else "cpu"
    eval_loader = BatchLoader(scored, stats, cfg.batch_size, train=False, channels_last=cfg.channels_last,
                              device=device)
    if cfg.data.pipeline == "batched":
        loader = BatchLoader(train, stats, cfg.batch_size, train=True, aug=cfg.augment, batched=cfg.batched,
                             seed=cfg.seed, channels_last=cfg.channels_last, rank=rank, world_size=world_size,
                             device=device, targets=targets)

        def batched_epoch(epoch: int) -> BatchLoader:
            loader.set_epoch(epoch)
            return loader
        return batched_epoch, eval_loader

    transform = albumentations_transform(stats, cfg.augment, cfg.albumentations, train=True)
    # as numpy: read once per image, where a torch scalar op costs more than the lookup is worth
    phases = flip_phases(len(train), cfg.seed).numpy() if cfg.augment.alternate_flip else None
    dataset = AlbumentationsDataset(train, transform, phases, targets)

    def albumentations_epoch(epoch: int) -> torch.utils.data.DataLoader:
        # the shuffle is the sampler's, shared by all ranks; augmentation draws are each rank's own
        g = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, stream=rank))
        transform.set_random_seed(epoch_seed(cfg.seed, epoch, stream=rank))
        dataset.set_epoch(epoch)
        sampler = None
        if world_size > 1:
            sampler = torch.utils.data.DistributedSampler(dataset, world_size, rank, seed=cfg.seed, drop_last=True)
            sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            dataset, cfg.batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True,
            num_workers=loader_workers(cfg.data.workers), generator=g, worker_init_fn=seed_albumentations_worker,
            persistent_workers=False,
        )
        return Normalized(loader, stats, cfg.channels_last)
    return albumentations_epoch, eval_loader
