import pytest
import torch

from advconv.nets.blocks import ACTIVATIONS, Residual
from advconv.nets.models import build_net, validate_spec
from advconv.nets.specs import MODELS, NetSpec, resolve_spec
from advconv.trained.hub import create_model


def spec_dict(**block_changes):
    block = dict(conv_type=["standard", "dilated"], out_channels=[8, 8], kernel_size=[3, 3],
                 stride=[2, 1], padding=[1, 2], dilation=[1, 2])
    return {"blocks": [block | block_changes]}


def test_spec_from_dict_builds_the_layers_it_lists():
    model = create_model(spec_dict())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride, c.dilation) for c in convs] == [(8, (2, 2), (1, 1)), (8, (1, 1), (2, 2)),
                                                                       (10, (1, 1), (1, 1))]  # then the head
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # the parameters are exactly the listed layers': two 3x3 convs, their batch norms, the 1x1 head
    assert sum(p.numel() for p in model.parameters()) == 3 * 8 * 9 + 8 * 8 * 9 + 2 * (2 * 8) + 8 * 10


@pytest.mark.parametrize("changes, message", [
    (dict(stride=[2]), r"model.blocks\[0\]: lists must have the same length.*stride=1"),
    (dict(out_channels=[8, 0]), r"model.blocks\[0\].out_channels\[1\]: must be a positive integer"),
    (dict(out_channels=[-4, 8]), r"out_channels\[0\]: must be a positive integer"),
    (dict(conv_type=["standard", "wavelet"]), r"conv_type\[1\]: unknown conv type 'wavelet'"),
    (dict(dilation=[1, 1]), r"dilation\[1\]: conv type 'dilated' needs dilation >= 2"),
    (dict(padding=[1, -1]), r"padding\[1\]: must be a non-negative integer"),
    (dict(kernel_size=[3, 9], padding=[1, 0], dilation=[1, 4]),
     r"layer 1: kernel_size=9, stride=1, padding=0, dilation=4 shrink the 16x16 feature map below 1x1"),
])
def test_impossible_specs_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        create_model(spec_dict(**changes))


def test_stride_that_shrinks_below_one_is_rejected():
    blocks = [dict(conv_type=["standard"], out_channels=[4], kernel_size=[3], stride=[2], padding=[0],
                   dilation=[1])] * 5
    with pytest.raises(ValueError, match=r"model.blocks\[4\], layer 0: .*below 1x1"):
        validate_spec(NetSpec.from_dict({"blocks": blocks}))


def test_group_norm_channels_must_divide():
    with pytest.raises(ValueError, match=r"out_channels\[0\]: 8 channels are not divisible by number_of_groups=3"):
        create_model(spec_dict() | {"normalization": "group", "number_of_groups": 3})
    with pytest.raises(ValueError, match="needs a positive number_of_groups"):
        create_model(spec_dict() | {"normalization": "group"})
    assert create_model(spec_dict() | {"normalization": "group", "number_of_groups": 4})


def test_unknown_norm_and_fields():
    with pytest.raises(ValueError, match="model.normalization: unknown normalization 'instance'"):
        create_model(spec_dict() | {"normalization": "instance"})
    with pytest.raises(ValueError, match=r"model: unknown field\(s\) \['widht'\]"):
        create_model(spec_dict() | {"widht": 2})
    with pytest.raises(ValueError, match=r"model.blocks\[0\]: unknown field\(s\) \['strides'\]"):
        create_model({"blocks": [{"strides": [1]}]})
    with pytest.raises(ValueError, match="model.activation: unknown activation 'tanh'; expected one of relu, silu"):
        create_model(spec_dict() | {"activation": "tanh"})


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_follows_every_conv_but_the_head(name):
    model = create_model({"base": "stem8", "activation": name})
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    acts = [m for m in model.modules() if type(m) in set(ACTIVATIONS.values())]
    assert len(acts) == len(convs) and all(type(m) is ACTIVATIONS[name] for m in acts)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_param_budget():
    with pytest.raises(ValueError, match=r"185,346 parameters; the budget allows fewer than 100,000"):
        validate_spec(resolve_spec("reference"), max_params=100_000)
    validate_spec(resolve_spec("reference"), max_params=200_000)


def test_training_and_the_check_share_one_budget():
    from advconv.nets.rules import check_rules

    spec = resolve_spec("reference")  # exactly 185,346 parameters
    with pytest.raises(ValueError, match="budget allows fewer than 185,346"):
        validate_spec(spec, max_params=185_346)
    assert not check_rules(build_net(spec), max_params=185_346).passed
    validate_spec(spec, max_params=185_347)
    assert check_rules(build_net(spec), max_params=185_347).passed


def test_residual_must_keep_shape():
    good = spec_dict(conv_type=["standard", "standard", "dilated"], out_channels=[8, 8, 8],
                     kernel_size=[3, 3, 3], stride=[2, 1, 1], padding=[1, 1, 2], dilation=[1, 1, 2])
    good["blocks"][0]["residual"] = [1, 3]
    skips = [m for m in create_model(good).modules() if isinstance(m, Residual)]
    assert len(skips) == 1 and len(list(skips[0].body.children())) == 2  # layers 1 and 2 in one skip
    bad = spec_dict(conv_type=["standard", "standard"], out_channels=[8, 16], kernel_size=[3, 3],
                    stride=[1, 1], padding=[1, 1], dilation=[1, 1])
    bad["blocks"][0]["residual"] = [1, 2]
    with pytest.raises(ValueError, match="residual: layer 1 changes the shape"):
        create_model(bad)


def test_stacked_residuals():
    layers = dict(conv_type=["standard"] * 5, out_channels=[8] * 5, kernel_size=[3] * 5,
                  stride=[2, 1, 1, 1, 1], padding=[1] * 5, dilation=[1] * 5)
    spec = spec_dict(**layers)
    spec["blocks"][0]["residual"] = [[1, 3], [3, 5]]
    model = create_model(spec)
    skips = [m for m in model.modules() if isinstance(m, Residual)]
    assert len(skips) == 2 and all(len(s.body) == 2 for s in skips)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    for bad in ([[1, 3], [2, 5]], [[3, 5], [1, 3]], [[1, 3], [3]], 4):
        spec["blocks"][0]["residual"] = bad
        with pytest.raises(ValueError, match=r"residual must be \[start, stop\]"):
            create_model(spec)


def test_a_base_net_with_one_field_changed():
    spec = {"base": "stem8", "activation": "gelu"}  # a registered net, one field changed
    assert resolve_spec(spec) == NetSpec.from_dict(resolve_spec("stem8").to_dict() | {"activation": "gelu"})
    assert resolve_spec("stem8_hardswish") == resolve_spec({"base": "stem8", "activation": "hardswish"})
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        resolve_spec({"base": "vgg"})


def test_unknown_model_name():
    with pytest.raises(ValueError, match="known models: assignment9"):
        resolve_spec("vgg")
    with pytest.raises(ValueError, match="unknown model 3"):
        resolve_spec(3)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registered_specs_round_trip_and_fit_the_budget(name):
    spec = resolve_spec(name)
    assert resolve_spec(spec) is spec
    assert resolve_spec(spec.to_dict()) == spec == NetSpec.from_dict(spec.to_dict())
    assert sum(p.numel() for p in build_net(spec).parameters()) < 200_000
