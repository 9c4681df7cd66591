"""A web page for a trained net (``advconv demo``): plain functions, then a thin Gradio layout.

Everything the page shows is computed by the functions here, which take and return arrays and
strings and are tested as such; ``build_app`` only lays them out, and only it imports Gradio
(an optional extra: ``pip install 'advconv[demo]'``). Bad uploads are answered on the page,
never with a traceback, and the server keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.datasets import ArrayDataset, decode_image
from ..errors import AdvconvError, ConfigError
from ..nets.receptive import effective_fields, layer_infos, resolve_layer
from ..trained.evaluation import labelled_at_hand, sample_misclassified
from ..trained.explain import blend, conv_blocks, gradcam_heatmaps, target_block
from ..trained.hub import TrainedModel, load_model
from ..trained.calibration import UNSURE
from ..trained.card import card_text
from ..trained.inference import Prediction, as_images, predict, preprocess
from ..trained.scoring import EvalResult, score
from . import HOST, PORT

SAMPLES = Path(__file__).resolve().parents[1] / "samples"  # one CIFAR-10 test image per class, shipped
MAX_FILES = 16                  # images per request: a page for a few photos, not a batch job
MAX_FILE_BYTES = 10 * 2 ** 20   # per upload; Gradio refuses larger files before they reach us
SHOWN = 192                     # pixels: the side an image (and its heatmap) is shown at
KEPT = 4 * SHOWN                # an upload is kept at most this large for showing: the page's memory


@dataclass
class Demo:
    """A trained model loaded once, with the labelled images its misclassified gallery draws from."""

    trained: TrainedModel
    name: str                                 # as the user gave it
    test: ArrayDataset | None = None          # None: no labelled images at hand
    scored: EvalResult | None = field(default=None, repr=False)  # the test set scored, once, when first asked

    @property
    def blocks(self) -> list[str]:
        """The layers Grad-CAM and the receptive-field panel look at: the net's conv blocks, by name."""
        return list(conv_blocks(self.trained.net))


def load_demo(model: str | Path, data: str | Path | None = None, cache_dir: str | Path | None = None) -> Demo:
    """``model`` (anything ``load_model`` takes) and, for the misclassified gallery, the labelled
    test images of ``data`` or of the data it was trained on when that is on this machine (never
    a download)."""
    trained = load_model(model)
    return Demo(trained, str(model), labelled_at_hand(trained, data, cache_dir))


def read_image(path: str | Path) -> np.ndarray:
    """An uploaded file as (H, W, 3) uint8 pixels, for showing: at its own size up to ``KEPT`` pixels
    a side, or one line naming it."""
    path = Path(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{path.name} is larger than {MAX_FILE_BYTES // 2 ** 20} MB")
    return np.array(decode_image(path, path.name, size=None, fit=KEPT))


def net_input(demo: Demo, image: np.ndarray) -> np.ndarray:
    """An image as the net sees it, (1, size, size, 3), resized as ``predict`` resizes an array."""
    return as_images(image, demo.trained.record.input_size)[0]


def top_k(demo: Demo, image: np.ndarray, k: int) -> Prediction:
    """The ``k`` most likely classes (at most all of them), their probabilities and whether the
    net is unsure of the image, as ``advconv predict`` gives them."""
    k = max(1, min(int(k), len(demo.trained.record.classes)))
    return predict(demo.trained, image, top_k=k)[0]


def shown(image: np.ndarray) -> np.ndarray:
    """An image at the page's size."""
    return np.array(Image.fromarray(image).resize((SHOWN, SHOWN), Image.BICUBIC))


def gradcam(demo: Demo, image: np.ndarray, class_index: int, layer: str, opacity: float,
            small: np.ndarray | None = None) -> np.ndarray:
    """Where the net looks for ``class_index`` in ``image``, from block ``layer``, blended over the
    image at the page's size with ``opacity`` (0: the image alone, 1: the heatmap alone);
    ``small``: what the net was given, (1, size, size, 3) (default: ``net_input``)."""
    record = demo.trained.record
    block = target_block(demo.trained.net, layer)
    small = net_input(demo, image) if small is None else small
    heatmap = gradcam_heatmaps(demo.trained.net, small, [class_index], record.stats, block)[0]
    return blend(shown(image), heatmap, float(np.clip(opacity, 0, 1)))


def unit_field(demo: Demo, image: np.ndarray, layer: str, point: tuple[float, float]) -> tuple[np.ndarray, str]:
    """What the receptive-field panel shows for a click at ``point`` (row, col, in the shown
    image's pixels) with block ``layer``: the unit of that block nearest the click, its effective
    field over the image as a heatmap and its theoretical square outlined, and both sides in words."""
    from PIL import ImageDraw

    record, net = demo.trained.record, demo.trained.net
    size = record.input_size
    small = net_input(demo, image)[0]
    name = resolve_layer(net, layer, size)
    info = layer_infos(net, size)[name]
    rows, cols = info.output_shape[1:]
    at = [float(np.clip(p, 0, SHOWN - 1)) * size / SHOWN for p in point]  # in input pixels
    unit = tuple(int(np.clip(round((p - s) / j), 0, n - 1))  # the unit whose field is centred nearest the click
                 for p, s, j, n in zip(at, info.start, info.jump, (rows, cols)))
    (measured,) = effective_fields(net, preprocess(small[None], record.stats), [name], {name: unit})
    overlay = Image.fromarray(blend(shown(image), measured.gradient / max(measured.gradient.max(), 1e-12), 0.6))
    scale, s = SHOWN / size, measured.square
    ImageDraw.Draw(overlay).rectangle([s.left * scale, s.top * scale, (s.right + 1) * scale - 1,
                                       (s.bottom + 1) * scale - 1], outline=(0, 255, 255), width=2)
    clipped = f", clipped by the {size}x{size} image to {s.side} px" if s.clipped else ""
    text = (f"**{layer}** unit {unit}: theoretical field **{measured.theoretical_side} px**{clipped}; effective "
            f"field: 50 % of its gradient within **{measured.sides[0.5]} px**, 95 % within "
            f"**{measured.sides[0.95]} px**")
    return np.array(overlay), text


def classify(demo: Demo, paths: list[str | Path], k: int, cam: bool, layer: str,
             opacity: float) -> tuple[list[tuple[np.ndarray, str]], str]:
    """What the page shows for uploaded files: (each image, or its Grad-CAM, with its top class
    as caption; a Markdown table of the top-k of each, with a line for each file refused)."""
    if not paths:
        return [], "Upload an image, or pick an example."
    lines, gallery = ["| image | class | probability |", "|---|---|---|"], []
    refused = [f"Only the first {MAX_FILES} of {len(paths)} files are read."] if len(paths) > MAX_FILES else []
    for path in paths[:MAX_FILES]:
        name = Path(path).name
        try:
            image = read_image(path)
            small = decode_image(Path(path), name, demo.trained.record.input_size)[None]  # as predict reads it
        except (AdvconvError, OSError) as exc:
            refused.append(f"**{name}** was not read: {exc}")
            continue
        found = top_k(demo, small, k)
        top, unsure = found.top, f" ({UNSURE})" if found.unsure else ""
        lines += [f"| {name + unsure if i == 0 else ''} | {cls} | {100 * p:.1f} % |" for i, (cls, p) in enumerate(top)]
        best = demo.trained.record.classes.index(top[0][0])
        gallery.append((gradcam(demo, image, best, layer, opacity, small) if cam else shown(image),
                        f"{name}: {top[0][0]} {100 * top[0][1]:.1f} %{unsure}"))
    table = "\n".join(lines) if gallery else ""
    return gallery, "\n\n".join([table, *refused]).strip()


def misclassified(demo: Demo, count: int, cam: bool, layer: str, opacity: float) -> tuple[list, str]:
    """``count`` misclassified test images, spread over the test set, captioned true / predicted
    (with their Grad-CAM of the predicted class when ``cam``), and a line saying how many there are."""
    if demo.test is None:
        return [], ("No labelled test images at hand: start the demo with `--data` (an image folder or "
                    "tarball with test/<class>/*) to see the misclassified ones.")
    record = demo.trained.record
    if demo.scored is None:
        demo.scored = score(demo.trained, demo.test)
    preds, targets = demo.scored.predictions.numpy(), demo.scored.targets.numpy()
    chosen = sample_misclassified(preds, targets, max(0, int(count)))
    gallery = [((gradcam(demo, demo.test.images[i], preds[i], layer, opacity) if cam
                 else shown(demo.test.images[i])),
                f"true {record.classes[targets[i]]} / predicted {record.classes[preds[i]]}") for i in chosen]
    wrong = int((preds != targets).sum())
    return gallery, f"{wrong} of {len(targets)} test images misclassified ({100 * wrong / len(targets):.2f} %)"


def model_card(demo: Demo) -> str:
    """What the net is and how it was measured, in Markdown, from the weights' own record."""
    return card_text(demo.name, demo.trained)


def build_app(demo: Demo):
    """The page: a thin Gradio layout over the functions above."""
    import gradio as gr

    classes = len(demo.trained.record.classes)
    samples = sorted(SAMPLES.glob("*.jpg"))
    with gr.Blocks(title=f"advconv: {demo.name}") as app:
        gr.Markdown(f"# advconv: {demo.name}")
        with gr.Accordion("Model card", open=False):
            gr.Markdown(model_card(demo), elem_id="card")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Images", file_count="multiple", elem_id="upload")
                gr.Examples([[[str(p)]] for p in samples], inputs=[files], label="Examples (one per class)",
                            example_labels=[p.stem for p in samples])
                k = gr.Slider(1, classes, value=min(3, classes), step=1, label="Top classes shown", elem_id="k")
                cam = gr.Checkbox(label="Grad-CAM", value=False, elem_id="cam")
                layer = gr.Dropdown(demo.blocks, value=demo.blocks[-1], label="Grad-CAM layer", elem_id="layer")
                opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Grad-CAM opacity", elem_id="opacity")
                run = gr.Button("Classify", variant="primary", elem_id="classify")
            with gr.Column():
                table = gr.Markdown(elem_id="result")
                gallery = gr.Gallery(label="Images", columns=3, height=420, object_fit="contain", elem_id="gallery")
        with gr.Accordion("Misclassified test images", open=False):
            count = gr.Slider(1, 50, value=10, step=1, label="How many", elem_id="count")
            show = gr.Button("Show misclassified", elem_id="show_wrong")
            wrong_text = gr.Markdown(elem_id="wrong_text")
            wrong = gr.Gallery(label="true / predicted", columns=5, height=420, object_fit="contain",
                               allow_preview=False, elem_id="wrong")
        with gr.Accordion("Receptive field: click a point", open=False, elem_id="rf_panel"):
            gr.Markdown("What one unit of a block sees: its theoretical field (the cyan square, from the "
                        "summary's arithmetic) and its effective field (where its gradient with respect to the "
                        "pixels lies, as a heatmap). Click the image; the first uploaded image replaces it.")
            with gr.Row():
                rf_image = gr.Image(shown(read_image(samples[0])), label="click a point", interactive=False,
                                    elem_id="rf_image")
                with gr.Column():
                    rf_layer = gr.Dropdown(demo.blocks, value=demo.blocks[-1], label="block", elem_id="rf_layer")
                    rf_text = gr.Markdown(elem_id="rf_text")
        base, point = gr.State(read_image(samples[0])), gr.State((SHOWN / 2, SHOWN / 2))

        def clicked(image, layer_name, evt):
            at = (evt.index[1], evt.index[0])  # Gradio gives (x, y)
            return *unit_field(demo, image, layer_name, at), at

        clicked.__annotations__["evt"] = gr.SelectData  # how Gradio knows to pass the click: a type, not a string

        def uploaded(f):
            paths = [getattr(x, "name", x) for x in (f or [])]
            try:
                image = read_image(paths[0]) if paths else read_image(samples[0])
            except (AdvconvError, OSError):
                image = read_image(samples[0])
            return image, shown(image), ""

        rf_image.select(clicked, [base, rf_layer], [rf_image, rf_text, point])
        rf_layer.change(lambda image, name, at: unit_field(demo, image, name, at), [base, rf_layer, point],
                        [rf_image, rf_text])
        files.change(uploaded, [files], [base, rf_image, rf_text])
        run.click(lambda f, *a: classify(demo, [getattr(x, "name", x) for x in (f or [])], *a),
                  [files, k, cam, layer, opacity], [gallery, table], api_name="classify")
        show.click(lambda *a: misclassified(demo, *a), [count, cam, layer, opacity], [wrong, wrong_text])
    return app


def serve(model: str | Path, data: str | Path | None = None, host: str = HOST, port: int = PORT,
          cache_dir: str | Path | None = None) -> None:
    """Load the model once and serve its page until interrupted; local only unless ``host`` says
    otherwise, never a public share link."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ConfigError("advconv demo needs Gradio: pip install 'advconv[demo]'") from None
    demo = load_demo(model, data, cache_dir)
    build_app(demo).launch(server_name=host, server_port=port, share=False, max_file_size=MAX_FILE_BYTES,
                           show_error=False, quiet=True)
