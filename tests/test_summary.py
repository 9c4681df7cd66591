"""The per-layer summary: shapes, parameters, MACs and the receptive field."""

import pytest
import torch
from torch import nn

from advconv.cli import main
from advconv.nets.blocks import create_conv2d
from advconv.nets.rules import check_rules
from advconv.nets.specs import MODELS
from advconv.nets.summary import summarize
from advconv.trained.hub import create_model


def final_rf(*layers) -> tuple[int, int]:
    return summarize(nn.Sequential(*layers), input_size=32).final_rf


def test_rf_dilated_after_two_stride_2_layers():
    # by hand: 1 -> 3 (jump 2) -> 3 + 2*2 = 7 (jump 4) -> 7 + (2*(3-1)) * 4 = 23
    rf = final_rf(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 1, 2, dilation=2))
    assert rf == (23, 23)


def test_rf_pointwise_and_norms_change_nothing():
    assert final_rf(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 1)) == (3, 3)


def test_rf_depthwise_separable_counts_its_kernel_once():
    # 5x5 stride 1 (rf 5), then depthwise 3x3 + pointwise: 5 + 2 = 7
    assert final_rf(nn.Conv2d(3, 8, 5, 1, 2), create_conv2d("depthwise", 8, 16, 3)) == (7, 7)


def test_rf_spatially_separable_per_axis():
    assert final_rf(create_conv2d("spatially_separable", 3, 8, 3)) == (3, 3)
    assert final_rf(nn.Conv2d(3, 8, (3, 1), padding=(1, 0))) == (3, 1)


def test_rf_jump_after_strides():
    s = summarize(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 1, 1)))
    convs = [layer for layer in s.layers if layer.kind == "Conv2d"]
    assert [c.jump for c in convs] == [(2, 2), (4, 4), (4, 4)]
    assert [c.rf for c in convs] == [(3, 3), (7, 7), (15, 15)]


def test_reference_net_matches_the_course_numbers():
    s = summarize(create_model("reference"))
    assert s.total_params == 185_346
    # C1: 3, 5, 7 (j2); C2: 11, 19 (dilated), 23 (j4); C3: 31 (dw), 39, 47 (j8); C4: 63, 79, 95
    assert s.final_rf == (95, 95)


def test_summary_shapes_and_macs():
    s = summarize(nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.Conv2d(8, 4, 1, stride=2, bias=False)))
    assert [layer.input_shape for layer in s.layers] == [(3, 32, 32), (8, 32, 32)]
    assert [layer.output_shape for layer in s.layers] == [(8, 32, 32), (4, 16, 16)]
    assert [layer.macs for layer in s.layers] == [32 * 32 * 8 * 3 * 9, 16 * 16 * 4 * 8]
    assert s.total_params == 8 * 27 + 32
    assert "Final receptive field: 3" in s.table()


def test_summary_leaves_training_mode_alone():
    model = create_model("assignment9").train()
    summarize(model)
    assert model.training


def test_cli_unknown_model_is_a_clear_error(capsys):
    assert main(["check", "--model", "resnet1000"]) == 2
    assert "unknown model 'resnet1000'" in capsys.readouterr().err


def test_summary_works_on_a_model_with_no_parameters():
    assert summarize(nn.Sequential(nn.AdaptiveAvgPool2d(1))).total_params == 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_of_every_shipped_model(name):
    assert create_model(name)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_summary_says_what_it_cannot_see_in_resnet18():
    import torchvision

    s = summarize(torchvision.models.resnet18())
    assert s.final_rf is None
    assert s.unseen.startswith("layer2.0.downsample.0 (Conv2d) takes a tensor that is not the previous layer's output")
    assert "Final receptive field: not computed: layer2.0.downsample.0" in s.table()
    rows = {layer.name: layer for layer in s.layers}
    assert rows["layer1.1.conv2"].rf is not None  # identity skips before the first projection are followed
    assert rows["layer2.0.downsample.0"].rf is None and rows["fc"].rf is None
    rf_rule = {r.rule: r for r in check_rules(torchvision.models.resnet18()).results}["receptive field >= 45"]
    assert not rf_rule.passed and rf_rule.detail.startswith("cannot be verified: layer2.0.downsample.0")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registered_models_are_chains_the_arithmetic_follows(name):
    s = summarize(create_model(name))
    assert s.unseen is None and s.final_rf is not None and s.functional_maxpools == 0
