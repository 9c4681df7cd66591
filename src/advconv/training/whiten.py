"""Patch whitening: the first conv starts as filters that decorrelate image patches, and stays so.

airbench's ablations (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds") found a frozen
whitening first layer the largest single saving of epochs to a target accuracy: the net starts
from inputs whose patch directions are uncorrelated and of equal variance, instead of spending
its first epochs learning such filters. Each principal direction of the patches comes as a
pair (v, -v), so the ReLU after the first conv keeps both signs of it. A first conv with fewer
than twice as many channels as a patch has numbers (2 x 27 for a 3x3 RGB conv) keeps only the
strongest directions and loses the rest for good, which can cost more than the head start gives
(measured in the project's lab).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import ArrayDataset, ChannelStats
from ..data.loaders import normalize
from ..nets.specs import BlockSpec

WHITENABLE = ("standard", "dilated", "pointwise")  # first-layer kinds that are one plain conv
SAMPLE_IMAGES = 5000   # images whose patches estimate the covariance: enough for 27 dimensions
CHUNK = 250            # images unfolded at a time
EPS = 5e-4             # added to the eigenvalues: keeps the near-constant directions from blowing up


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first convolution of a net built from specs (the first in module order)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError("the net has no convolution to whiten")


def whitening_filters(images: torch.Tensor, kernel_size: int, dilation: int = 1) -> torch.Tensor:
    """(C*k*k, C, k, k) filters, one per principal direction of the k x k patches of
    ``images`` (normalized floats, N C H W), largest variance first, each scaled to unit variance."""
    dims = images.shape[1] * kernel_size ** 2
    covariance, count = torch.zeros(dims, dims, dtype=torch.float64), 0
    for chunk in images.split(CHUNK):  # the patches of every image at once would take gigabytes
        patches = F.unfold(chunk.float(), kernel_size, dilation=dilation)  # N, C*k*k, L
        flat = patches.transpose(1, 2).reshape(-1, dims).double()
        covariance += flat.T @ flat
        count += len(flat)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance / count)      # ascending
    variances = eigenvalues.flip(0)
    filters = eigenvectors.T.flip(0) / torch.sqrt(variances.clamp(min=0) + EPS).unsqueeze(1)
    return filters.float().reshape(-1, images.shape[1], kernel_size, kernel_size)


def whitening_sample(images: np.ndarray) -> np.ndarray:
    """Up to ``SAMPLE_IMAGES`` training images (N, H, W, C), evenly spread: image folders come
    sorted by class, so the first few thousand could all be of one class."""
    return images[:: max(1, len(images) // SAMPLE_IMAGES)][:SAMPLE_IMAGES]


def whiten_first_conv(model: nn.Module, filters: torch.Tensor) -> nn.Conv2d:
    """Set the first conv's filters to the strongest of ``filters`` (from ``whitening_filters``)
    and their negatives, and freeze them."""
    conv = first_conv(model)
    pairs = min(conv.out_channels // 2, len(filters))
    with torch.no_grad():
        weight = conv.weight.float()  # channels beyond 2 x pairs keep their random start
        weight[:pairs] = filters[:pairs]
        weight[pairs:2 * pairs] = -filters[:pairs]
        conv.weight.copy_(weight)
    conv.weight.requires_grad_(False)
    return conv


def first_conv_whitening(train: ArrayDataset, stats: ChannelStats, first: BlockSpec) -> torch.Tensor:
    """The whitening filters of a net's first conv (its block ``first``), from the training
    images only, normalized as the net sees them: a validation split stays unseen."""
    sample = normalize(torch.from_numpy(whitening_sample(train.images)).permute(0, 3, 1, 2), stats)
    return whitening_filters(sample, first.kernel_size[0], first.dilation[0])
