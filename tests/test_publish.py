"""Sharing a trained net: Hub-style weights and a Space folder, written here, never pushed."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml

from advconv.cli import main
from advconv.errors import ConfigError
from advconv.page.demo import SAMPLES
from advconv.trained.hub import load_model, shipped_tags
from advconv.trained.publish import hub_folder, space_folder

from .conftest import free_port, launch_chromium


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.mark.parametrize("tag", shipped_tags())
def test_hub_style_weights_load_back_as_they_were(tag, tmp_path):
    out = tmp_path / "hub"
    assert main(["export", "--model", tag, "--format", "hub", "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    shipped, loaded = load_model(tag), load_model(out)
    assert loaded.record == shipped.record
    assert all(torch.equal(a, b) for a, b in zip(shipped.net.state_dict().values(), loaded.net.state_dict().values()))
    meta = front_matter(out / "README.md")
    assert (meta["library_name"], meta["license"], meta["datasets"], meta["metrics"]) == \
        ("advconv", "mit", ["cifar10"], ["accuracy"])
    assert "Measured:" in (out / "README.md").read_text()


def test_a_folder_of_someone_elses_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds files advconv did not write"):
        hub_folder("stem8.default", tmp_path)
    with pytest.raises(ConfigError, match="holds files advconv did not write"):
        space_folder("stem8.default", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_space_folder_holds_what_a_space_needs(tmp_path):
    import gradio

    import advconv

    out = tmp_path / "space"
    assert main(["space", "stem8.default", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "app.py", "examples", "model", "requirements.txt"]
    meta = front_matter(out / "README.md")
    assert (meta["sdk"], meta["sdk_version"], meta["app_file"]) == ("gradio", gradio.__version__, "app.py")
    assert "receptive field" in (out / "README.md").read_text() and "Limits:" in (out / "README.md").read_text()
    pins = (out / "requirements.txt").read_text().split()
    assert pins[0] == f"advconv[demo]=={advconv.__version__}" and all("==" in p for p in pins)
    assert sorted(p.name for p in (out / "examples").iterdir()) == sorted(p.name for p in SAMPLES.iterdir())
    assert load_model(out / "model").record == load_model("stem8.default").record
    space_folder("stem8.default", out)  # writing it again replaces only its own files


@pytest.fixture(scope="module")
def space_url(tmp_path_factory):
    """The page a Space folder's app.py serves: started here with this interpreter, or, in CI, the
    one .ci/installed.sh started from a clean environment holding only its requirements
    (ADVCONV_SPACE_URL)."""
    if os.environ.get("ADVCONV_SPACE_URL"):
        yield os.environ["ADVCONV_SPACE_URL"]
        return
    folder = tmp_path_factory.mktemp("space")
    out = space_folder("stem8.default", folder / "space")
    port = free_port()
    env = os.environ | {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    server = subprocess.Popen([sys.executable, str(out / "app.py")], env=env, cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert server.poll() is None, "the Space's app.py ended"
                time.sleep(0.5)
        else:
            pytest.fail("the Space's app.py did not answer")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.slow
def test_the_space_in_a_browser_answers_top_k_grad_cam_and_unsure(space_url, tmp_path):
    from PIL import Image
    from playwright.sync_api import sync_playwright


    grey = tmp_path / "grey.png"  # a picture of nothing: the shipped net is unsure of it
    Image.new("RGB", (64, 64), (128, 128, 128)).save(grey)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(space_url)
        page.set_input_files("#upload input[type=file]", [str(SAMPLES / "cat.jpg"), str(grey)])
        for stem in ("cat", "grey"):  # listed once uploaded (the name and its suffix apart)
            page.wait_for_selector(f"#upload :text('{stem}')")
        page.click("#classify")
        page.wait_for_selector("#result table")
        rows = page.locator("#result table tbody tr").all_inner_texts()
        assert rows[0].split("\t")[:2] == ["cat.jpg", "cat"] and "unsure" not in rows[0]
        assert "grey.png (unsure: maybe none of the classes)" in rows[3]  # its top-3 still shown
        plain = page.get_attribute("#gallery img", "src")
        page.check("#cam input")
        page.click("#classify")
        page.wait_for_function("(before) => document.querySelector('#gallery img').src !== before", arg=plain)
        assert "grey.png" in page.inner_text("#gallery") and "unsure" in page.inner_text("#gallery")
        browser.close()
