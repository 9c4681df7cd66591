import pytest

from advconv.config import Config, ConfigError, config_from_dict, load_config, parse_overrides


def test_overrides_by_leaf_and_dotted_name(tmp_path):
    cfg = load_config(None, parse_overrides(["--epochs", "3", "--lr", "0.2", "--optim.schedule", "cosine",
                                             "--tta", "--pipeline=batched"]))
    assert (cfg.epochs, cfg.optim.lr, cfg.optim.schedule, cfg.tta, cfg.data.pipeline) == \
        (3, 0.2, "cosine", True, "batched")


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 7\noptim:\n  lr: 0.1\n  name: adam\ndata:\n  pipeline: batched\n")
    cfg = load_config(path, {"lr": 0.3})
    assert (cfg.epochs, cfg.optim.name, cfg.optim.lr, cfg.data.pipeline) == (7, "adam", 0.3, "batched")


def test_int_promoted_to_float():
    assert load_config(None, {"lr": 1}).optim.lr == 1.0


@pytest.mark.parametrize("overrides, message", [
    ({"epochz": 3}, "unknown config field 'epochz'"),
    ({"epochs": "many"}, r"epochs: expected int, got 'many'"),
    ({"epochs": True}, "epochs: expected int"),
    ({"optim.schedule": "sawtooth"}, "optim.schedule: 'sawtooth' is not one of"),
    ({"precision": "fp8"}, "precision: 'fp8' is not one of"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_model_spec_in_yaml_is_kept_whole(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  blocks:\n    - {conv_type: [standard], out_channels: [8], kernel_size: [3],"
                    " stride: [1], padding: [1], dilation: [1]}\n")
    assert load_config(path).model["blocks"][0]["out_channels"] == [8]


def test_dict_round_trip():
    cfg = load_config(None, {"epochs": 4, "lr": 0.3})
    assert config_from_dict(cfg.to_dict()) == cfg


def test_shipped_configs_load():
    from pathlib import Path

    for path in sorted(Path(__file__).resolve().parents[1].glob("configs/*.yaml")):
        assert isinstance(load_config(path), Config)


def test_assignment9_yaml_spells_out_the_defaults():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "configs" / "assignment9.yaml"
    assert load_config(path) == Config()
