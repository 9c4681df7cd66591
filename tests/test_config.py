import re

import pytest

from advconv import recipes
from advconv.cli import build_parser
from advconv.config import RENAMED, SETTINGS, Config, ConfigError, config_from_dict, load_config, read_config_file


def cli_overrides(args: list[str]) -> dict:
    """What `advconv train ARGS` passes on as config overrides."""
    return {k: v for k, v in vars(build_parser().parse_args(["train", *args])).items() if k in SETTINGS}


def test_overrides_by_leaf_and_dotted_name(tmp_path):
    cfg = load_config(None, cli_overrides(["--epochs", "3", "--lr", "0.2", "--optim.schedule", "cosine",
                                           "--no-tta-flip", "--pipeline=batched", "--batch-size", "64"]))
    assert (cfg.epochs, cfg.optim.lr, cfg.optim.schedule, cfg.tta_flip, cfg.data.pipeline, cfg.batch_size) == \
        (3, 0.2, "cosine", False, "batched", 64)
    assert cli_overrides(["--tta_flip"]) == {"tta_flip": True}
    assert cli_overrides(["--tta-flip", "false"]) == {"tta_flip": False}


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 7\noptim:\n  lr: 0.1\n  name: adam\ndata:\n  pipeline: batched\n")
    cfg = load_config(path, {"lr": 0.3})
    assert (cfg.epochs, cfg.optim.name, cfg.optim.lr, cfg.data.pipeline) == (7, "adam", 0.3, "batched")


def test_int_promoted_to_float():
    assert load_config(None, {"lr": 1}).optim.lr == 1.0


@pytest.mark.parametrize("overrides, message", [
    ({"epochz": 3}, "unknown config field 'epochz'; did you mean 'epochs'"),
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


@pytest.mark.parametrize("name", recipes.names())
def test_shipped_recipes_hold_what_their_files_say_and_describe_a_net_that_builds(name):
    from advconv.config import validate_config
    from advconv.nets.models import validate_spec
    from advconv.nets.specs import resolve_spec

    def written(fields: dict, prefix: str = ""):  # every field as the file (and its bases) writes it
        for key, value in fields.items():
            if isinstance(value, dict) and key != "model":
                yield from written(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    path = recipes.path_of(name)
    cfg = load_config(name)
    for key, value in written(read_config_file(name)):
        obj = cfg
        for name in key.split("."):
            obj = getattr(obj, name)
        assert obj == value, key
    validate_config(cfg)  # nothing set that its pipeline ignores, every value within its rule
    validate_spec(resolve_spec(cfg.model), cfg.data.image_size, cfg.max_params)
    history = re.findall(r"#.*\b(?:[Rr]ows? \d+|until row|session \d+)", path.read_text())
    assert history == [], "config comments say why, not when: the history lives in the lab"


def test_options_that_are_off_do_not_bound_the_image_size():
    from advconv.config import validate_config

    validate_config(load_config(None, {"image_size": 16}))  # downsample_min's default 16 only binds when on
    with pytest.raises(ConfigError, match="batched.downsample_min must be below data.image_size"):
        validate_config(load_config(None, {"image_size": 16, "downsample": 0.1}))


def test_the_default_recipe_spells_out_the_defaults():
    assert load_config("default") == Config()


def test_a_config_extends_its_base(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("epochs: 7\ntta_shift: 2\noptim:\n  lr: 0.1\n  name: adam\n"
                                        "model: reference\n")
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("base: ../base.yaml\nepochs: 9\noptim:\n  lr: 0.3\n")
    cfg = load_config(child, {"tta_shift": 1})
    # the child's fields win, sections merge field by field, overrides come last
    assert (cfg.epochs, cfg.optim.lr, cfg.optim.name, cfg.model, cfg.tta_shift) == (9, 0.3, "adam", "reference", 1)


def test_a_base_model_is_replaced_whole(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  normalization: group\n  number_of_groups: 4\n  blocks: []\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nmodel:\n  blocks: []\n")
    assert load_config(tmp_path / "child.yaml").model == {"blocks": []}


def test_base_errors(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_config(loop)
    (tmp_path / "orphan.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="config file not found: .*nowhere.yaml"):
        load_config(tmp_path / "orphan.yaml")
    (tmp_path / "odd.yaml").write_text("base: [1]\n")
    with pytest.raises(ConfigError, match="base must be a recipe.s name or another config file"):
        load_config(tmp_path / "odd.yaml")


@pytest.mark.parametrize("raw, value", [("1e-3", 1e-3), ("5e-4", 5e-4), (".1", 0.1), ("-2E+3", -2000.0),
                                        ("0.05", 0.05), ("3", 3.0)])
def test_numbers_in_any_usual_spelling(tmp_path, raw, value):
    assert load_config(None, cli_overrides([f"--lr={raw}"])).optim.lr == value  # = lets a value start with -
    path = tmp_path / "c.yaml"
    path.write_text(f"optim:\n  weight_decay: {raw}\n")
    assert load_config(path).optim.weight_decay == value


def test_booleans_and_strings_stay_what_they_are():
    overrides = cli_overrides(["--tta_flip", "false", "--channels_last", "true", "--run_dir", "1e3x"])
    assert overrides == {"tta_flip": False, "channels_last": True, "run_dir": "1e3x"}


def test_alternate_flip_needs_flips():
    from advconv.config import validate_config

    with pytest.raises(ConfigError, match="alternate_flip .*augment.hflip 0 forbids"):
        validate_config(load_config(None, {"alternate_flip": True, "hflip": 0.0}))


@pytest.mark.parametrize("pipeline, field, value", [
    ("batched", "rotate", 5.0), ("batched", "affine", 0.0), ("albumentations", "translate", 2),
    ("albumentations", "downsample", 0.1)])
def test_a_field_of_the_other_pipeline_cannot_be_set(pipeline, field, value):
    from advconv.config import resolve_key, validate_config

    with pytest.raises(ConfigError, match=rf"{resolve_key(field)} set, but data.pipeline is {pipeline}"):
        validate_config(load_config(None, {"pipeline": pipeline, field: value}))
    validate_config(load_config(None, {"pipeline": pipeline}))


def test_a_section_must_be_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("augment: 3\n")
    with pytest.raises(ConfigError, match="augment is a section: expected a mapping"):
        load_config(path)


def test_every_field_is_declared_once_and_the_help_lists_it(capsys):
    from advconv.cli import main

    assert all(s.help for s in SETTINGS.values())
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for path, s in SETTINGS.items():
        assert f"--{path}" in out and " ".join(s.help.split()) in out, path
    assert "(default: 0.0005)" in out and f"(default: {Config().model!r})" in out
    assert "one of sgd, adam, adamw" in out


def test_a_recipe_is_named_from_any_folder_and_a_base_may_name_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkout here: the recipes come from the package
    assert load_config("fast") == load_config(recipes.path_of("fast"))
    (tmp_path / "mine.yaml").write_text("base: fast\nepochs: 3\n")
    mine = load_config("mine.yaml")
    assert (mine.epochs, mine.optim.name, mine.optim.whiten) == (3, "muon", True)


@pytest.mark.parametrize("old, new", list(recipes.RENAMED.items()))
def test_a_renamed_recipe_names_its_new_name(old, new):
    with pytest.raises(ConfigError, match=f"recipe '{old}' is now '{new}'"):
        load_config(old)


def test_a_renamed_field_names_its_new_name_and_stored_configs_still_read():
    for old, new in RENAMED.items():
        with pytest.raises(ConfigError, match=f"config field '{old}' is now '{new}'"):
            load_config(None, {old: True})
        stored = Config().to_dict()
        stored[old] = stored.pop(new)  # a checkpoint written before the rename
        assert config_from_dict(stored) == Config()


def test_recipes_lists_each_shipped_recipe_once_with_what_it_reached(capsys):
    from advconv.cli import main

    assert main(["recipes"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == recipes.names() and set(recipes.measured()) == set(listed)
