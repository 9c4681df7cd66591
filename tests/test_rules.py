"""The assignment's rules, checked on built modules: nets that keep them and nets that break one each."""

import pytest
from torch import nn

from advconv import recipes
from advconv.cli import main
from advconv.config import Config, load_config
from advconv.nets.rules import check_rules
from advconv.nets.specs import MODELS
from advconv.trained.hub import create_model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shipped_models_pass_every_rule(name):
    report = check_rules(create_model(name))
    assert report.passed, str(report)


LAYOUT = "C1 C2 C3 C4 then the output, C1-C3 close strided or dilated"


@pytest.mark.parametrize("factory, failing_rule", [
    ("with_maxpool", "no max-pooling"),
    ("without_dilation", "dilated conv"),
    ("over_budget", "params < 200,000"),
    ("small_receptive_field", "receptive field >= 45"),
    ("block_left_open", LAYOUT),
    ("arbitrary_sequential", LAYOUT),
])
def test_rule_checker_catches_bad_models(factory, failing_rule):
    from advconv.api import resolve_model

    report = check_rules(resolve_model(f"tests.bad_models:{factory}"))
    failed = [r.rule for r in report.results if not r.passed]
    assert failed == [failing_rule], str(report)  # that rule, and only that one
    assert f"[FAIL] {failing_rule}:" in str(report) and "1 rule(s) failed" in str(report)
    assert check_rules(resolve_model("stem8")).passed  # the same checker passes a net that keeps the rules


@pytest.mark.parametrize("factory, detail", [
    ("block_left_open", "c2 closes with neither a stride-2 nor a dilated conv"),
    ("arbitrary_sequential", "cannot be verified: the net's first children are not blocks named c1, c2, c3, c4 "
                             "(found 0, 1, 2, 3, 4)"),
])
def test_layout_rule_says_which_block_is_open_or_that_it_cannot_tell(factory, detail):
    from advconv.api import resolve_model

    result = {r.rule: r for r in check_rules(resolve_model(f"tests.bad_models:{factory}")).results}[LAYOUT]
    assert not result.passed and result.detail == detail


def test_layout_rule_names_how_each_block_closes():
    result = {r.rule: r for r in check_rules(create_model("reference")).results}[LAYOUT]
    assert result.passed and result.detail == "c1 closes with stride 2, c2 closes with stride 2, c3 closes with stride 2"
    head_conv = create_model("reference")
    head_conv.head = nn.Conv2d(64, 10, 3, padding=1)
    result = {r.rule: r for r in check_rules(head_conv).results}[LAYOUT]
    assert not result.passed and result.detail.startswith("head after c4 holds a conv larger than 1x1")


TEACHERS = [name for name in recipes.names() if load_config(name).max_params is None]  # no budget: distillation


@pytest.mark.parametrize("name", [n for n in recipes.names() if n not in TEACHERS])
def test_every_shipped_recipe_net_passes_every_rule(name):
    from advconv.api import resolve_model

    report = check_rules(resolve_model(recipes.path_of(name)))
    assert report.passed, str(report)


def test_only_the_teacher_leaves_the_budget():
    assert TEACHERS == ["teacher"]


def test_depthwise_without_pointwise_is_not_separable():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.Conv2d(8, 8, 3, 1, 1, groups=8),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    result = {r.rule: r for r in check_rules(model).results}["depthwise-separable conv"]
    assert not result.passed and "not followed by a 1x1 pointwise conv" in result.detail


def test_cli_summary_and_check(capsys):
    assert main(["summary", "--model", "assignment9"]) == 0
    out = capsys.readouterr().out
    assert "Total params:" in out and "Final receptive field:" in out
    assert main(["check", "--model", "assignment9"]) == 0
    assert "All rules pass." in capsys.readouterr().out
    assert main(["check", "--model", "tests.bad_models:with_maxpool"]) == 1
    assert "[FAIL] no max-pooling" in capsys.readouterr().out
    assert main(["summary"]) == 0  # no --model: the net the default config trains
    default_params = sum(p.numel() for p in create_model(Config().model).parameters())
    assert f"Total params: {default_params:,}" in capsys.readouterr().out


def test_cli_check_takes_a_config_file(capsys, tmp_path):
    config = tmp_path / "narrow.yaml"
    config.write_text("model: {base: stem8, activation: gelu}\n")
    assert main(["summary", "--model", str(config)]) == 0
    assert f"Total params: {sum(p.numel() for p in create_model('stem8').parameters()):,}" in capsys.readouterr().out


@pytest.mark.parametrize("factory, rule, detail", [
    ("FunctionalMaxPool", "no max-pooling", "found 1 functional max-pool call(s)"),
    ("FunctionalMaxPool", "receptive field >= 45", "cannot be verified: body.c2.0.0 (Conv2d) takes a tensor"),
    ("Upsampled", "receptive field >= 45", "cannot be verified: layers.1 (Upsample) resizes the map"),
])
def test_rules_see_functional_pooling_and_unknown_resizing(factory, rule, detail, capsys):
    assert main(["check", "--model", f"tests.bad_models:{factory}"]) == 1
    out = capsys.readouterr().out
    assert f"[FAIL] {rule}: {detail}" in out
