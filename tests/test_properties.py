"""Property-based tests: random specs either build and run with the predicted shape, or are
rejected with a ValueError; the receptive-field arithmetic matches gradients."""

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

from advconv.nets.blocks import conv_output_size, get_conv_block
from advconv.nets.models import build_net, validate_spec
from advconv.nets.specs import NetSpec
from advconv.nets.summary import summarize

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ["standard", "pointwise", "depthwise", "dilated", "spatially_separable", "transpose"]


@st.composite
def layer(draw, valid=True):
    kind = draw(st.sampled_from(KINDS))
    k = 1 if kind == "pointwise" else draw(st.sampled_from([1, 3, 5]))
    d = draw(st.integers(2, 3)) if kind == "dilated" else draw(st.integers(1, 2))
    s = draw(st.integers(1, 2))
    p = draw(st.integers(0, 3))
    out = draw(st.integers(1, 12))
    if not valid:
        field = draw(st.sampled_from(["out", "k", "s", "p", "d", "kind"]))
        out, k, s, p, d, kind = {
            "out": (draw(st.integers(-3, 0)), k, s, p, d, kind),
            "k": (out, draw(st.integers(-2, 0)), s, p, d, kind),
            "s": (out, k, draw(st.integers(-2, 0)), p, d, kind),
            "p": (out, k, s, draw(st.integers(-3, -1)), d, kind),
            "d": (out, k, s, p, draw(st.integers(-2, 0)), kind),
            "kind": (out, k, s, p, d, draw(st.sampled_from(["fancy", "Standard", ""]))),
        }[field]
    return kind, out, k, s, p, d


def as_block(layers):
    kinds, outs, ks, ss, ps, ds = (list(c) for c in zip(*layers))
    return dict(conv_type=kinds, out_channels=outs, kernel_size=ks, stride=ss, padding=ps, dilation=ds)


@SETTINGS
@given(st.lists(layer(), min_size=1, max_size=4), st.integers(1, 4), st.integers(4, 20))
def test_valid_block_builds_and_runs_with_the_predicted_shape(layers, in_channels, size):
    block = as_block(layers)
    spec = NetSpec.from_dict({"blocks": [block], "in_channels": in_channels})
    try:
        validate_spec(spec, input_size=size)
    except ValueError as exc:
        assert "below 1x1" in str(exc)  # the only way a well-typed spec may fail
        return
    expected = size
    for kind, _, k, s, p, d in layers:
        expected = conv_output_size(expected, k, s, p, d, transpose=kind == "transpose")
    body = get_conv_block(block["conv_type"], in_channels, block["out_channels"], block["kernel_size"],
                          block["stride"], block["padding"], block["dilation"])
    out = body(torch.randn(2, in_channels, size, size))
    assert out.shape == (2, layers[-1][1], expected, expected)
    assert build_net(spec, size)(torch.randn(2, in_channels, size, size)).shape == (2, 10)


@SETTINGS
@given(st.lists(layer(), min_size=1, max_size=3), layer(valid=False), st.data())
def test_invalid_layer_is_a_value_error_not_a_torch_error(layers, bad, data):
    layers = list(layers)
    layers.insert(data.draw(st.integers(0, len(layers))), bad)
    block = as_block(layers)
    with pytest.raises(ValueError):
        validate_spec(NetSpec.from_dict({"blocks": [block]}))
    with pytest.raises(ValueError):
        get_conv_block(block["conv_type"], 3, block["out_channels"], block["kernel_size"],
                       block["stride"], block["padding"], block["dilation"])


@SETTINGS
@given(st.lists(layer(), min_size=1, max_size=3), st.integers(1, 3))
def test_unequal_lists_are_a_value_error(layers, which):
    block = as_block(layers)
    name = ["conv_type", "out_channels", "kernel_size", "stride", "padding", "dilation"][which]
    block[name] = block[name] + block[name][:1]
    with pytest.raises(ValueError, match="same length"):
        validate_spec(NetSpec.from_dict({"blocks": [block]}))


def gradient_receptive_field(model: nn.Module, size: int) -> tuple[int, int]:
    """Rows and columns of the input that reach the centre output pixel (by autograd)."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = model(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    touched = x.grad[0, 0].abs() > 0
    rows, cols = touched.any(1).nonzero(), touched.any(0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3, 5]), st.integers(1, 2), st.integers(1, 3)),
                min_size=1, max_size=5))
def test_receptive_field_matches_autograd(convs):
    # all-ones weights, no activations: every input pixel in the field gets a non-zero gradient
    layers = []
    for k, s, d in convs:
        conv = nn.Conv2d(1, 1, k, stride=s, dilation=d, padding=d * (k - 1) // 2, bias=False)
        nn.init.ones_(conv.weight)
        layers.append(conv)
    model = nn.Sequential(*layers)
    predicted = summarize(model, input_size=128, in_channels=1).final_rf
    size = 2 * max(predicted) + 64  # large enough that no border clips the field
    assert gradient_receptive_field(model, size) == predicted


MODES = ["L", "RGB", "RGBA", "P", "I;16"]


@st.composite
def folder_tree(draw):
    """A small random image-folder tree: classes (names that may clash in case), counts per split
    (zero included), sizes, modes, formats, stray non-image files and truncated images."""
    names = draw(st.lists(st.sampled_from(["cat", "dog", "owl", "ant", "Cat"]), min_size=1, max_size=3, unique=True))
    files = []
    for split in draw(st.sampled_from([("train", "test")] * 8 + [("train",), ("test",)])):
        for cls in names if draw(st.integers(0, 3)) < 3 else draw(st.lists(st.sampled_from(names), min_size=1, unique=True)):
            for i in range(draw(st.sampled_from([2, 1, 3, 0]))):
                mode = draw(st.sampled_from(MODES))
                fmt = "png" if mode in ("RGBA", "P", "I;16") else draw(st.sampled_from(["png", "jpg", "bmp"]))
                size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
                files.append((f"{split}/{cls}/{i}.{fmt}", mode, size, draw(st.integers(0, 9)) == 0))
            if draw(st.booleans()):
                files.append((f"{split}/{cls}/readme.txt", None, None, False))
    return files


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(tree=folder_tree(), skip_corrupt=st.booleans())
def test_any_folder_tree_loads_consistently_or_fails_in_our_words(tmp_path_factory, tree, skip_corrupt):
    import io
    import warnings

    import numpy as np
    from PIL import Image

    from advconv.data.datasets import DataError, load_dataset

    root = tmp_path_factory.mktemp("tree")
    for name, mode, size, truncated in tree:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if mode is None:
            path.write_text("not an image")
            continue
        buffer = io.BytesIO()
        Image.new(mode, size).save(buffer, "JPEG" if name.endswith(".jpg") else name.rsplit(".", 1)[1].upper())
        data = buffer.getvalue()
        path.write_bytes(data[: len(data) // 2] if truncated else data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train, test = load_dataset(root, root / ".cache", skip_corrupt=skip_corrupt)
    except DataError as exc:
        assert "\n" not in str(exc).split("\n(pass --skip_corrupt")[0]  # one line, in our words
        event("refused: " + next((why for why in ("decode", "no images", "lacks", "no readable", "case", "holds no")
                                  if why in str(exc)), "other"))
        return
    event("loaded")
    for split in (train, test):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (32, 32, 3)
        assert len(split.images) == len(split.labels) > 0
        assert split.classes == train.classes == tuple(sorted(split.classes))
        assert 0 <= split.labels.min() and split.labels.max() < len(split.classes)
