"""Patch whitening of the first conv (optim.whiten)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from advconv.config import ConfigError, OptimConfig
from advconv.data.datasets import channel_stats, load_dataset
from advconv.data.loaders import normalize
from advconv.nets.specs import MODELS
from advconv.trained.checkpoint import load_checkpoint
from advconv.trained.hub import create_model
from advconv.training.optim import build_optimizer
from advconv.training.train import fit
from advconv.training.whiten import first_conv, whiten_first_conv, whitening_filters, whitening_sample


def correlated_images(n=200, size=16, seed=0):
    """Channels that share most of their signal, smooth in space: far from white."""
    g = torch.Generator().manual_seed(seed)
    base = F.avg_pool2d(torch.randn(n, 1, size + 2, size + 2, generator=g), 3, 1)
    return base.repeat(1, 3, 1, 1) + 0.3 * torch.randn(n, 3, size, size, generator=g)


@pytest.mark.parametrize("kernel_size, dilation", [(3, 1), (3, 2), (1, 1)])
def test_filters_make_the_patches_uncorrelated_and_of_unit_variance(kernel_size, dilation):
    images = correlated_images()
    filters = whitening_filters(images, kernel_size, dilation)
    assert filters.shape == (3 * kernel_size ** 2, 3, kernel_size, kernel_size)
    out = F.conv2d(images, filters, dilation=dilation)
    flat = out.permute(0, 2, 3, 1).reshape(-1, len(filters)).double()
    covariance = flat.T @ flat / len(flat)
    variances = covariance.diagonal()  # lambda / (lambda + eps): 1 but for near-empty directions
    assert torch.allclose(variances[:3], torch.ones(3, dtype=torch.float64), atol=0.02)
    assert variances.max() <= 1.0 + 1e-6
    off = covariance - torch.diag(variances)
    assert off.abs().max() < 0.02


@pytest.mark.parametrize("name", sorted(MODELS))
def test_first_conv_holds_direction_pairs_and_is_frozen(name):
    model = create_model(name)
    filters = whitening_filters(correlated_images(size=32), 3)
    conv = whiten_first_conv(model, filters)
    assert conv is first_conv(model) and not conv.weight.requires_grad
    pairs = conv.out_channels // 2
    assert torch.allclose(conv.weight[:pairs], filters[:pairs])
    assert torch.allclose(conv.weight[pairs:2 * pairs], -filters[:pairs])
    trained = {id(p) for group in build_optimizer(OptimConfig(), model).param_groups for p in group["params"]}
    assert id(conv.weight) not in trained and len(trained) == sum(p.requires_grad for p in model.parameters())


def test_sample_spreads_over_class_sorted_images():
    images = np.repeat(np.arange(10, dtype=np.uint8), 1000).reshape(-1, 1, 1, 1)  # 10 classes, sorted
    sample = whitening_sample(images)
    assert len(sample) == 5000 and set(np.unique(sample)) == set(range(10))


def test_a_whitened_run_ends_with_the_filters_of_its_training_images(tmp_path, make_config):
    cfg = make_config(epochs=2, whiten=True)
    result = fit(cfg, progress=False)
    train, _ = load_dataset(cfg.data.path, cfg.data.cache_dir)
    sample = torch.from_numpy(whitening_sample(train.images)).permute(0, 3, 1, 2)
    expected = whitening_filters(normalize(sample, channel_stats(train.images)), 3)
    pairs = first_conv(result.model).out_channels // 2
    assert torch.allclose(first_conv(result.model).weight[:pairs], expected[:pairs], atol=1e-6)
    saved = load_checkpoint(tmp_path / "run").model
    assert torch.equal(saved["c1.0.0.weight"], first_conv(result.model).weight)


def test_a_first_layer_that_is_not_one_plain_conv_is_refused(make_config):
    model = {"blocks": [{"conv_type": ["depthwise", "standard"], "out_channels": [16, 32], "kernel_size": [3, 3],
                         "stride": [1, 2], "padding": [1, 1], "dilation": [1, 1]}]}
    with pytest.raises(ConfigError, match="optim.whiten needs a first layer of kind standard"):
        fit(make_config(model=model, whiten=True), progress=False)
