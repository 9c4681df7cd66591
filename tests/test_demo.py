"""demo: the page's functions (top-k, Grad-CAM, misclassified images, the model card), then the
page itself, served on a free local port and driven in headless Chromium."""

import os
from pathlib import Path

import numpy as np
import pytest

from advconv.page.demo import (MAX_FILES, SAMPLES, SHOWN, classify, gradcam, load_demo, misclassified, model_card,
                               read_image, top_k)
from advconv.trained.inference import predict_files

from .conftest import free_port, launch_chromium

SHIPPED = "stem8.default"
LABELLED = Path(__file__).parent / "data" / "cifar10"  # two CIFAR-10 test images per class, by class folder


@pytest.fixture(scope="module")
def demo():
    return load_demo(SHIPPED, LABELLED)


def test_ten_examples_ship_one_per_class_and_the_page_says_what_predict_says(demo):
    samples = sorted(SAMPLES.glob("*.jpg"))
    assert [p.stem for p in samples] == sorted(demo.trained.record.classes)
    expected = [p.top[0][0] for p in predict_files(SHIPPED, samples, top_k=1)]
    assert [top_k(demo, read_image(p), 1).top[0][0] for p in samples] == expected


def test_top_k_is_capped_at_the_classes_and_sorted(demo):
    image = read_image(SAMPLES / "cat.jpg")
    top = top_k(demo, image, 99).top
    assert len(top) == 10 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert sum(p for _, p in top) == pytest.approx(1, abs=1e-4) and len(top_k(demo, image, 0).top) == 1


def test_gradcam_blends_the_chosen_layer_at_the_chosen_opacity(demo):
    image = read_image(SAMPLES / "ship.jpg")
    plain = gradcam(demo, image, 8, "c4", 0.0)
    assert plain.shape == (SHOWN, SHOWN, 3) and plain.dtype == np.uint8
    strong, c3 = gradcam(demo, image, 8, "c4", 1.0), gradcam(demo, image, 8, "c3", 1.0)
    assert np.abs(strong.astype(int) - plain).mean() > 10  # the heatmap shows at full opacity
    assert not np.array_equal(strong, c3)  # another layer looks elsewhere
    with pytest.raises(ValueError, match="no block 'head'; the net's blocks are c1, c2, c3, c4"):
        gradcam(demo, image, 8, "head", 0.5)


def test_classify_answers_a_bad_upload_on_the_page_and_reads_the_rest(demo, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    gallery, text = classify(demo, [notes, SAMPLES / "frog.jpg"], 2, True, "c4", 0.5)
    assert "**notes.txt** was not read: cannot decode image notes.txt" in text
    assert "| frog.jpg | frog |" in text and len(gallery) == 1 and gallery[0][1].startswith("frog.jpg: frog")
    _, text = classify(demo, [SAMPLES / "cat.jpg"] * (MAX_FILES + 1), 1, False, "c4", 0.5)
    assert f"Only the first {MAX_FILES} of {MAX_FILES + 1} files are read." in text
    assert classify(demo, [], 3, False, "c4", 0.5)[1] == "Upload an image, or pick an example."


def test_misclassified_images_are_the_ones_evaluate_gets_wrong(demo):
    from advconv.trained.evaluation import evaluate_checkpoint

    scored = evaluate_checkpoint(SHIPPED, LABELLED).result
    wrong = int((scored.predictions != scored.targets).sum())
    gallery, text = misclassified(demo, 50, False, "c4", 0.5)
    assert text.startswith(f"{wrong} of 20 test images misclassified") and len(gallery) == wrong
    classes = demo.trained.record.classes
    for _, caption in gallery:
        true, predicted = caption.removeprefix("true ").split(" / predicted ")
        assert true != predicted and {true, predicted} <= set(classes)
    assert "start the demo with `--data`" in misclassified(load_demo(SHIPPED), 5, False, "c4", 0.5)[1]


def test_the_model_card_comes_from_the_weights_record(demo):
    card = model_card(demo)
    for words in ("190,960 parameters", "receptive field 69", "rules: all pass", "36 epochs of sgd at peak lr 0.4",
                  "87.01 % on the 10,000 test images of cifar10-jpeg.tar.gz"):
        assert words in card


def test_without_gradio_the_command_says_how_to_get_it(monkeypatch, capsys):
    import builtins

    from advconv.cli import main

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "gradio" else real_import(name, *a, **k))
    assert main(["demo", "--model", SHIPPED, "--port", "1"]) == 2
    assert "advconv demo needs Gradio: pip install 'advconv[demo]'" in capsys.readouterr().err


# ---------------------------------------------------------------- the page, in a real browser

@pytest.fixture(scope="module")
def page(demo):
    from playwright.sync_api import sync_playwright

    from advconv.page.demo import build_app

    port = free_port()
    app = build_app(demo)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        tab.goto(f"http://127.0.0.1:{port}/")
        yield tab
        browser.close()
    app.close()


def upload_and_classify(page, *files):
    page.set_input_files("#upload input[type=file]", [str(f) for f in files])
    for f in files:  # uploaded once the file component lists it
        page.wait_for_selector(f"#upload :text('{Path(f).name}')")
    page.click("#classify")


@pytest.mark.slow
def test_the_page_in_a_browser(page, tmp_path):
    upload_and_classify(page, SAMPLES / "horse.jpg")
    page.wait_for_selector("#result table")
    rows = page.locator("#result table tbody tr").all_inner_texts()
    assert len(rows) == 3 and rows[0].split("\t")[:2] == ["horse.jpg", "horse"]  # top-3, as predict says

    page.check("#cam input")
    page.click("#layer input")
    page.get_by_role("option", name="c3").click()
    page.fill("#opacity input[type=number]", "0.8")
    page.press("#opacity input[type=number]", "Enter")
    assert page.input_value("#layer input") == "c3" and page.input_value("#opacity input[type=number]") == "0.8"
    plain = page.get_attribute("#gallery img", "src")
    page.click("#classify")
    page.wait_for_function("(before) => document.querySelector('#gallery img').src !== before", arg=plain)
    assert "horse.jpg: horse" in page.inner_text("#gallery")  # now its Grad-CAM, from c3 at 0.8

    page.get_by_text("Misclassified test images").click()
    page.click("#show_wrong")
    page.wait_for_selector("#wrong_text :text('misclassified')")
    assert "of 20 test images misclassified" in page.inner_text("#wrong_text")

    page.get_by_text("Receptive field: click a point").click()
    page.wait_for_selector("#rf_image img")
    before = page.get_attribute("#rf_image img", "src")
    page.click("#rf_image img", position={"x": 40, "y": 60})  # a unit off the centre
    answered = "(start) => document.querySelector('#rf_text').innerText.trim().startsWith(start)"
    page.wait_for_function(answered, arg="c4 unit")
    c4_text, c4_src = page.inner_text("#rf_text").strip(), page.get_attribute("#rf_image img", "src")
    assert c4_src != before and c4_text.startswith("c4 unit") and "69 px" in c4_text  # the summary's field
    page.click("#rf_layer input")
    page.get_by_role("option", name="c2").click()
    page.wait_for_function(answered, arg="c2 unit")
    c2_text = page.inner_text("#rf_text").strip()
    assert c2_text.startswith("c2 unit") and "theoretical field 21 px" in c2_text
    assert page.get_attribute("#rf_image img", "src") != c4_src

    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    upload_and_classify(page, notes)
    page.wait_for_selector("#result :text('was not read')")
    assert "notes.txt was not read: cannot decode image" in page.inner_text("#result")

    upload_and_classify(page, SAMPLES / "ship.jpg")  # the server still answers
    page.wait_for_selector("#result :text('ship.jpg')")
    assert "ship.jpg: ship" in page.inner_text("#gallery")
    page.get_by_text("Model card").click()
    page.wait_for_selector("#card :text('receptive field')")
    # the README's picture: ADVCONV_SCREENSHOT=/tmp/page.png python -m pytest tests/test_demo.py, then shrunk
    page.screenshot(path=os.environ.get("ADVCONV_SCREENSHOT", str(tmp_path / "page.png")), full_page=True)


def test_the_field_panel_answers_a_click_with_the_nearest_unit_of_the_block(demo):
    from advconv.page.demo import SHOWN, unit_field

    image = read_image(SAMPLES / "cat.jpg")
    c4, c4_text = unit_field(demo, image, "c4", (SHOWN / 2, SHOWN / 2))
    c2, c2_text = unit_field(demo, image, "c2", (0, SHOWN - 1))
    assert c4.shape == c2.shape == (SHOWN, SHOWN, 3) and not np.array_equal(c4, c2)
    assert c4_text.startswith("**c4** unit (4, 4)") and "**69 px**, clipped by the 32x32 image" in c4_text
    assert c2_text.startswith("**c2** unit (0, 7)") and "**21 px**" in c2_text
