"""Sharing a trained net the Hugging Face way: Hub-style weights and a Space folder, written here
and pushed by the user (``huggingface_hub.upload_folder``); nothing here reaches a network.

Hub-style weights are a folder of ``model.safetensors``, ``config.json`` (the inference record
and provenance: ``load_model(FOLDER)`` reads it) and a ``README.md`` whose front matter is the
Hub's model-card metadata (huggingface_hub's ``ModelCardData``). A Space folder holds those
weights under ``model/``, an ``app.py`` that serves the same page as ``advconv demo``, a
``requirements.txt`` pinning what the page needs, the example images, and a README whose front
matter names the Gradio SDK and the app file, followed by the model card.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

from .. import __version__
from ..errors import ConfigError
from ..files import atomic_write_bytes
from . import runfiles
from .card import card_text
from .checkpoint import HUB_CONFIG, save_weights
from .hub import SHIPPED, TrainedModel, load_model

HUB_FILES = {runfiles.WEIGHTS, HUB_CONFIG, "README.md"}
SPACE_FILES = {"README.md", "app.py", "requirements.txt", "model", "examples"}
PAGE_NEEDS = ("torch", "gradio", "grad-cam")  # pinned in a Space's requirements at the versions here

APP = '''"""The advconv page of this Space's net: the same page as `advconv demo`."""

import os
from pathlib import Path

from advconv.page.demo import serve

# a Space serves on 0.0.0.0:7860; GRADIO_SERVER_NAME and GRADIO_SERVER_PORT say otherwise
serve(Path(__file__).resolve().parent / "model", host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
      port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
'''


def _fresh_folder(out: Path, ours: set[str]) -> None:
    """``out`` made ready to write into: absent, empty, or holding only what we write there."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file: give a folder to write into")
    strangers = sorted(p.name for p in out.iterdir() if p.name not in ours) if out.exists() else []
    if strangers:
        raise ConfigError(f"{out} holds files advconv did not write ({', '.join(strangers[:3])}): give an empty or "
                          "new folder")
    out.mkdir(parents=True, exist_ok=True)


def _name(source: str | Path) -> str:
    path = Path(source)
    return path.name.removesuffix(".safetensors") if path.exists() else str(source)


def hub_card(name: str, trained: TrainedModel) -> str:
    """The README of Hub-style weights: the Hub's metadata, then the model card and how to use it."""
    from huggingface_hub import ModelCardData

    data = ModelCardData(library_name="advconv", license="mit", datasets=["cifar10"], metrics=["accuracy"],
                         pipeline_tag="image-classification", tags=["advconv", "cifar10", "image-classification"])
    return (f"---\n{data.to_yaml()}\n---\n\n# {name}\n\n{card_text(name, trained)}\n\n## Use\n\n"
            "```python\nimport advconv\n\nmodel = advconv.load_model(\"path/to/this/folder\")\n"
            "for p in advconv.predict(model, [\"cat.jpg\"]):\n    print(p.line())\n```\n")


def hub_folder(source: str | Path, out: str | Path) -> Path:
    """``source`` (anything ``load_model`` takes) as Hub-style weights in the folder ``out``."""
    trained, out = load_model(source), Path(out)
    _fresh_folder(out, HUB_FILES)
    save_weights(out / runfiles.WEIGHTS, trained.net.state_dict(), trained.record, trained.provenance,
                 out / HUB_CONFIG)
    atomic_write_bytes(out / "README.md", hub_card(_name(source), trained).encode())
    return out


def space_folder(source: str | Path, out: str | Path) -> Path:
    """A folder ready to push to a Hugging Face Space serving ``source``'s page."""
    import gradio

    out = Path(out)
    _fresh_folder(out, SPACE_FILES)
    name = _name(source)
    hub_folder(source, out / "model")
    shutil.copytree(SHIPPED.parent / "samples", out / "examples", dirs_exist_ok=True)
    atomic_write_bytes(out / "app.py", APP.encode())
    pins = [f"advconv[demo]=={__version__}"] + [f"{p}=={metadata.version(p)}" for p in PAGE_NEEDS]
    atomic_write_bytes(out / "requirements.txt", ("\n".join(pins) + "\n").encode())
    trained = load_model(out / "model")
    front = (f"---\ntitle: {name}\nemoji: 🖼️\ncolorFrom: blue\ncolorTo: green\nsdk: gradio\n"
             f"sdk_version: {gradio.__version__}\napp_file: app.py\npinned: false\nlicense: mit\n---\n")
    atomic_write_bytes(out / "README.md", (f"{front}\n# {name}\n\nA CIFAR-10 classifier built with advconv under the "
                                           f"\"Advanced Convolutions\" rules: upload a picture, see its top classes, "
                                           f"where the net looks (Grad-CAM) and what a unit sees (its receptive "
                                           f"field).\n\n{card_text(name, trained)}\n").encode())
    return out
