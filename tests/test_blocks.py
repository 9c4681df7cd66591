import pytest
import torch
from torch import nn

from advconv.nets.blocks import (DepthwiseSeparableConv, GlobalAvgPool, SpatiallySeparableConv, conv_norm_act,
                                 create_conv2d, get_conv_block, norm_layer)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "conv_type, kwargs, in_hw, out_shape, params",
    [
        ("standard", dict(kernel_size=3), 16, (32, 16, 16), 16 * 32 * 9),
        ("standard", dict(kernel_size=3, stride=2), 16, (32, 8, 8), 16 * 32 * 9),
        ("pointwise", dict(kernel_size=1), 16, (32, 16, 16), 16 * 32),
        ("depthwise", dict(kernel_size=3), 16, (32, 16, 16), 16 * 9 + 16 * 32),
        ("depthwise", dict(kernel_size=3, stride=2), 16, (32, 8, 8), 16 * 9 + 16 * 32),
        ("dilated", dict(kernel_size=3, dilation=2), 16, (32, 16, 16), 16 * 32 * 9),
        ("dilated", dict(kernel_size=3, dilation=2, padding=0), 16, (32, 12, 12), 16 * 32 * 9),
        ("spatially_separable", dict(kernel_size=3), 16, (32, 16, 16), 16 * 32 * 3 + 32 * 32 * 3),
        ("transpose", dict(kernel_size=3, stride=2), 8, (32, 16, 16), 16 * 32 * 9),
    ],
)
def test_conv_kinds_shape_and_params(conv_type, kwargs, in_hw, out_shape, params):
    conv = create_conv2d(conv_type, 16, 32, **kwargs)
    assert conv(torch.randn(2, 16, in_hw, in_hw)).shape == (2, *out_shape)
    assert n_params(conv) == params


def test_depthwise_separable_is_depthwise_then_pointwise():
    conv = DepthwiseSeparableConv(8, 24)
    assert conv.depthwise.groups == 8 and conv.depthwise.out_channels == 8
    assert conv.pointwise.kernel_size == (1, 1) and conv.pointwise.out_channels == 24
    # 8*9 + 8*24 = 264 weights, against 8*24*9 = 1728 for a standard 3x3 conv
    assert n_params(conv) == 264


def test_spatially_separable_is_kx1_then_1xk():
    conv = SpatiallySeparableConv(4, 4, kernel_size=5, padding=2)
    assert conv.vertical.kernel_size == (5, 1) and conv.horizontal.kernel_size == (1, 5)
    assert n_params(conv) == 2 * 4 * 4 * 5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(conv_type="fancy"), "conv_type: unknown conv type 'fancy'"),
        (dict(conv_type="dilated", dilation=1), "dilation >= 2"),
        (dict(conv_type="pointwise", kernel_size=3), "kernel size 1"),
        (dict(conv_type="standard", out_channels=0), "out_channels: must be a positive integer"),
        (dict(conv_type="standard", stride=0), "stride: must be a positive integer"),
        (dict(conv_type="standard", padding=-1), "padding: must be a non-negative integer"),
    ],
)
def test_create_conv2d_rejects_bad_arguments(kwargs, message):
    args = dict(in_channels=4, out_channels=8) | kwargs
    with pytest.raises(ValueError, match=message):
        create_conv2d(**args)


def test_norm_layers():
    assert isinstance(norm_layer("batch", 8), nn.BatchNorm2d)
    assert norm_layer("group", 8, 4).num_groups == 4
    assert norm_layer("layer", 8).num_groups == 1
    assert isinstance(norm_layer("none", 8), nn.Identity)
    with pytest.raises(ValueError, match="needs a positive number_of_groups"):
        norm_layer("group", 8)
    with pytest.raises(ValueError, match="8 channels are not divisible by number_of_groups=3"):
        norm_layer("group", 8, 3)
    with pytest.raises(ValueError, match="unknown normalization"):
        norm_layer("instance", 8)


def test_conv_norm_act_order():
    unit = conv_norm_act("standard", 3, 8, activation_fn=nn.GELU, normalization="group", number_of_groups=2)
    assert [type(m) for m in unit] == [nn.Conv2d, nn.GroupNorm, nn.GELU]


def block_args(**changes):
    args = dict(conv_type=["standard", "depthwise", "dilated"], in_channels=3,
                out_channels_list=[8, 16, 16], kernel_size_list=[3, 3, 3], stride_list=[1, 1, 2],
                padding_list=[1, 1, 2], dilation_list=[1, 1, 2])
    return args | changes


def test_get_conv_block_norm_and_activation_after_every_conv():
    block = get_conv_block(**block_args())
    assert isinstance(block, nn.Sequential) and len(block) == 3
    for unit in block:
        assert isinstance(unit[1], nn.BatchNorm2d) and isinstance(unit[2], nn.ReLU)
    assert block(torch.randn(2, 3, 32, 32)).shape == (2, 16, 16, 16)


def test_get_conv_block_last_layer_is_bare():
    block = get_conv_block(**block_args(), last_layer=True)
    assert isinstance(block[-1], nn.Conv2d)  # no norm, no activation after the network's last conv
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.ReLU)) for m in block[-1].modules())
    assert isinstance(block[0][1], nn.BatchNorm2d)


def test_get_conv_block_group_norm():
    block = get_conv_block(**block_args(), normalization="group", number_of_groups=4, activation_fn=nn.SiLU)
    assert all(isinstance(u[1], nn.GroupNorm) and isinstance(u[2], nn.SiLU) for u in block)


@pytest.mark.parametrize("field", ["conv_type", "out_channels_list", "kernel_size_list",
                                   "stride_list", "padding_list", "dilation_list"])
def test_get_conv_block_unequal_lists_named(field):
    args = block_args()
    args[field] = list(args[field])[:2]
    with pytest.raises(ValueError, match=f"same length.*{field}=2"):
        get_conv_block(**args)


def test_get_conv_block_group_norm_needs_groups():
    with pytest.raises(ValueError, match="number_of_groups"):
        get_conv_block(**block_args(), normalization="group")


def test_get_conv_block_rejects_string_conv_type():
    with pytest.raises(ValueError, match="must be a list"):
        get_conv_block(**block_args(conv_type="standard"))


def test_get_conv_block_names_the_bad_layer():
    with pytest.raises(ValueError, match=r"get_conv_block layer 1: conv_type: unknown conv type 'wavelet'"):
        get_conv_block(**block_args(conv_type=["standard", "wavelet", "dilated"]))
    with pytest.raises(ValueError, match=r"layer 2: out_channels: must be a positive integer, got 0"):
        get_conv_block(**block_args(out_channels_list=[8, 16, 0]))


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_global_avg_pool_matches_torch_and_keeps_the_gradient_layout(layout, dtype):
    """torch's pooling hands channels_last maps an NCHW gradient; ours keeps the maps' layout."""
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5, 5, dtype=dtype).to(memory_format=layout)
    pooled, grads, reaching = {}, {}, {}
    for pool in (nn.AdaptiveAvgPool2d(1), GlobalAvgPool()):
        xs = x.clone().requires_grad_(True)
        maps = torch.relu(xs)
        maps.register_hook(lambda g, kind=type(pool): reaching.setdefault(kind, g))
        y = pool(maps)
        (y.float().squeeze() * torch.arange(6.0)).sum().backward()
        pooled[type(pool)], grads[type(pool)] = y, xs.grad
    assert torch.equal(pooled[GlobalAvgPool], pooled[nn.AdaptiveAvgPool2d])
    assert torch.equal(grads[GlobalAvgPool], grads[nn.AdaptiveAvgPool2d])
    assert reaching[GlobalAvgPool].is_contiguous(memory_format=layout)
    if layout == torch.channels_last:  # the mismatch GlobalAvgPool exists for
        assert not reaching[nn.AdaptiveAvgPool2d].is_contiguous(memory_format=layout)


def test_global_avg_pool_outside_training_is_torch_pooling():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert GlobalAvgPool().eval()(x).grad_fn.name() == nn.AdaptiveAvgPool2d(1)(x).grad_fn.name()
    with torch.no_grad():
        assert torch.equal(GlobalAvgPool()(x), nn.AdaptiveAvgPool2d(1)(x))
    assert GlobalAvgPool()(x[0]).shape == (3, 1, 1)  # unbatched input, as torch's
