"""hub: a name means one net everywhere, and the shipped weights load and predict as when shipped.

The expected predictions in data/shipped_predictions.json were written by
``python -m tests.test_hub`` (from the repository root) when the weights were shipped; rerun it
only when a shipped weight file is replaced on purpose.
"""

import json
import re
import sys
from pathlib import Path

import pytest
import torch

import advconv
from advconv.cli import main
from advconv.errors import ConfigError
from advconv.trained.calibration import UNSURE
from advconv.nets.specs import MODELS
from advconv.trained.hub import SHIPPED, architecture_of, create_model, load_model, resolve_model, shipped_tags

DATA = Path(__file__).parent / "data"
IMAGES = sorted((DATA / "cifar10").glob("*/*.jpg"))  # two CIFAR-10 test images of each class
GOLDEN = DATA / "shipped_predictions.json"


def layout(net):
    """What makes two nets the same architecture: their modules and their weights' shapes."""
    return str(net), {k: tuple(v.shape) for k, v in net.state_dict().items()}


def predictions(tag: str) -> list[str]:
    return [p.top[0][0] for p in advconv.predict(load_model(tag), IMAGES)]


def test_some_weights_ship_and_each_tag_names_an_architecture():
    assert shipped_tags() and all(architecture_of(tag) in MODELS for tag in shipped_tags())
    assert len(IMAGES) == 20  # the committed test images are there


@pytest.mark.parametrize("tag", shipped_tags())
def test_every_way_of_naming_a_shipped_net_builds_the_same_architecture(tag):
    arch = architecture_of(tag)
    expected = layout(create_model(arch))
    named = {"create_model(tag)": create_model(tag),
             "create_model(tag, pretrained)": create_model(tag, pretrained=True),
             "create_model(arch, pretrained)": create_model(arch, pretrained=True),
             "load_model(tag)": load_model(tag).net, "resolve_model(tag)": resolve_model(tag)}
    for how, net in named.items():
        assert layout(net) == expected, how
    params = sum(p.numel() for p in create_model(arch).parameters())
    assert advconv.summary(tag).total_params == advconv.summary(arch).total_params == params


@pytest.mark.parametrize("tag", shipped_tags())
def test_shipped_weights_predict_the_committed_images_as_when_shipped(tag, capsys):
    found = predictions(tag)
    right = sum(cls == path.parent.name for cls, path in zip(found, IMAGES))
    assert right >= 0.75 * len(IMAGES)  # trained weights, not a fresh net's (about 10 %)
    assert found == json.loads(GOLDEN.read_text())[tag]
    assert main(["predict", "--model", tag, *map(str, IMAGES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = [re.search(rf": (?:{UNSURE} \()?(\S+) [\d.]+%", line)[1] for line in lines]
    assert shown == found  # the CLI runs the same net ...
    unsure = [p.unsure for p in advconv.predict(load_model(tag), IMAGES)]
    assert [UNSURE in line for line in lines] == unsure  # ... and marks the same images unsure


def test_shipped_json_holds_no_path_of_the_training_machine():
    def strings(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)
        elif isinstance(value, str):
            yield value

    for meta in (Path(advconv.__file__).parent / "weights").glob("*.json"):
        provenance = json.loads(meta.read_text())["provenance"]
        config = provenance["config"]
        assert config["data"]["path"] is None and config["data"]["cache_dir"] is None, meta.name
        assert config["run_dir"].startswith("runs/"), meta.name
        absolute = [s for s in strings(provenance) if s.startswith(("/", "~")) or " /" in s]
        assert absolute == [], meta.name


UNSHIPPED = sorted(set(MODELS) - {architecture_of(tag) for tag in shipped_tags()})


@pytest.mark.parametrize("arch", UNSHIPPED)
def test_an_architecture_without_shipped_weights_never_loads_another_nets(arch, capsys, tmp_path):
    with pytest.raises(ConfigError, match=f"no shipped weights for '{arch}'; shipped: stem8.default"):
        create_model(arch, pretrained=True)
    with pytest.raises(ConfigError, match=f"no shipped weights for '{arch}'"):
        load_model(arch)
    image = tmp_path / "a.png"
    image.write_bytes(IMAGES[0].read_bytes())
    assert main(["predict", "--model", arch, str(image)]) == 2
    assert f"no shipped weights for '{arch}'" in capsys.readouterr().err


def test_an_architecture_name_always_means_that_architecture():
    assert "assignment9" in UNSHIPPED  # its weights were once shipped under that name: no longer
    assert sum(p.numel() for p in create_model("assignment9").parameters()) == 186_752
    assert advconv.summary("assignment9").total_params == 186_752
    assert advconv.check("assignment9").passed


def test_a_run_and_its_weights_file_summarize_as_the_trained_net(tmp_path, make_config, capsys):
    advconv.fit(make_config(epochs=1, model="assignment9"), progress=False)
    run = tmp_path / "run"
    three_classes = sum(p.numel() for p in create_model({"base": "assignment9", "num_classes": 3}).parameters())
    for source in (run, run / "model.safetensors", run / "last.pt"):
        assert main(["summary", "--model", str(source)]) == 0
        out = capsys.readouterr().out
        assert f"Total params: {three_classes:,}" in out, source  # the trained net: the data's 3 classes
        assert main(["check", "--model", str(source)]) == 0
        capsys.readouterr()


if __name__ == "__main__":  # write the expected predictions (see the module docstring)
    GOLDEN.write_text(json.dumps({tag: predictions(tag) for tag in shipped_tags()}, indent=1) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)


@pytest.mark.parametrize("old, new", [("stem8.assignment9", "stem8.default"),
                                      ("stem8_hardswish.best", "stem8_hardswish.accurate")])
def test_a_tag_shipped_under_an_old_recipe_name_still_loads_and_names_the_new(old, new, capsys):
    from safetensors.torch import load_file

    trained = load_model(old)
    assert f"{old} is now {new}" in capsys.readouterr().err
    shipped = load_file(SHIPPED / f"{new}.safetensors")
    assert all(torch.equal(trained.net.state_dict()[k], shipped[k]) for k in shipped)
