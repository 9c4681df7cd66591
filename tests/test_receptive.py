"""Receptive fields: the effective field never leaves the theoretical square, and matches closed forms."""

import numpy as np
import pytest
import torch
from torch import nn

from advconv.errors import ConfigError
from advconv.nets.receptive import (block_ends, effective_fields, layer_infos, mass_sides, mosaic, resolve_layer,
                                    square_of, tiles_for)
from advconv.nets.specs import MODELS
from advconv.nets.summary import summarize
from advconv.trained.hub import create_model


def outside(field) -> np.ndarray:
    """The gradient outside the unit's theoretical square."""
    s, mask = field.square, np.ones(field.gradient.shape, bool)
    mask[s.top:s.bottom + 1, s.left:s.right + 1] = False
    return field.gradient[mask]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_effective_field_is_zero_outside_the_theoretical_square_at_every_conv(name):
    torch.manual_seed(0)
    net = create_model(name).eval()
    size = 32 * tiles_for(net, 32)
    fields = effective_fields(net, torch.randn(2, 3, size, size), list(layer_infos(net, size)))
    rows = {r.name: r for r in summarize(net, size).layers}
    for field in fields:
        assert not outside(field).any(), field.layer
        assert field.theoretical_side == rows[field.layer].rf[0]
        assert not field.square.clipped and field.square.side == field.theoretical_side  # whole on the mosaic
        assert field.gradient.any()


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_stacked_all_ones_3x3_convs_give_repeated_box_filters(k):
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(k)])
    for conv in net:
        nn.init.ones_(conv.weight)
    (field,) = effective_fields(net, torch.randn(1, 1, 16, 16), [str(k - 1)])
    box = np.array([1.0])
    for _ in range(k):
        box = np.convolve(box, np.ones(3))  # the coefficients of (1 + x + x^2)^k
    expected = np.zeros((16, 16))
    expected[8 - k:8 + k + 1, 8 - k:8 + k + 1] = np.outer(box, box)
    assert field.unit == (8, 8) and field.theoretical_side == 2 * k + 1
    np.testing.assert_allclose(field.gradient, expected)


def test_a_unit_at_the_border_gets_the_clipped_square():
    torch.manual_seed(0)
    net = create_model("stem8").eval()
    c4 = resolve_layer(net, "c4", 32)
    (field,) = effective_fields(net, torch.randn(2, 3, 64, 64), [c4], {c4: (0, 0)})
    s = field.square
    assert (s.top, s.left, s.clipped) == (0, 0, True) and s.bottom == s.right == (69 - 1) // 2
    assert not outside(field).any() and field.gradient[0, 0] > 0


def test_layers_are_named_by_block_or_conv_and_a_wrong_name_says_which_there_are():
    net = create_model("stem8")
    ends = block_ends(net)
    assert [e.split(".")[0] for e in ends] == ["c1", "c2", "c3", "c4"]
    assert resolve_layer(net, "c3", 32) == ends[2] and resolve_layer(net, ends[1], 32) == ends[1]
    with pytest.raises(ConfigError, match="no conv layer 'c9'.*blocks: c1, c2, c3, c4"):
        resolve_layer(net, "c9", 32)


def test_mass_squares():
    delta = np.zeros((9, 9))
    delta[4, 4] = 1.0
    assert mass_sides(delta, (4, 4)) == {0.5: 1, 0.95: 1}
    flat = np.ones((9, 9))
    assert mass_sides(flat, (4, 4)) == {0.5: 7, 0.95: 9}  # 49 of 81 pixels hold 60 %, 25 only 31 %


def test_a_square_on_a_small_input_is_clipped_and_says_so():
    net = create_model("stem8")
    infos = layer_infos(net, 32)
    last = block_ends(net)[-1]
    centre = square_of(infos[last], (4, 4), (32, 32))
    assert centre.clipped and (centre.top, centre.bottom) == (0, 31)
    first = square_of(infos[block_ends(net)[0]], (8, 8), (32, 32))
    assert not first.clipped and first.side == infos[block_ends(net)[0]].rf[0]


def test_a_mosaic_tiles_the_images_in_turn():
    images = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    tiled = mosaic(images, 3)
    assert tiled.shape == (4, 6, 6, 3)
    assert np.array_equal(tiled[0, :2, :2], images[0]) and np.array_equal(tiled[0, :2, 2:4], images[1])
    assert np.array_equal(tiled[1, :2, :2], images[(9 * 1) % 4])
