"""Boxes for region-of-interest transfer: found, grown, parsed, cropped and pasted back (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.output_box import (
    box_slices,
    crop_affine,
    fill_value,
    foreground_box,
    grow_box,
    outside_error,
    parse_box,
    paste,
    union_box,
)


def test_foreground_box_is_the_tightest_box_of_nonzero_voxels():
    mask = np.zeros((10, 12, 14), np.uint8)
    mask[2, 3, 4] = 1
    mask[5, 9, 6] = 2
    assert foreground_box(mask) == ((2, 6), (3, 10), (4, 7))
    assert foreground_box(np.zeros((4, 4, 4), np.uint8)) is None


def test_union_and_grow_clip_to_the_volume():
    box = union_box([((2, 6), (3, 10), (4, 7)), None, [[0, 3], [8, 12], [5, 6]]])
    assert box == ((0, 6), (3, 12), (4, 7))
    assert grow_box(box, 3, (10, 12, 14)) == ((0, 9), (0, 12), (1, 10))
    assert union_box([None]) is None


@pytest.mark.parametrize("text", ["", "1:2,3:4", "a:b,1:2,3:4", "4:2,0:1,0:1", "0:1,0:1,0:99", "0:1,0:1,0:1,0:1"])
def test_bad_boxes_are_refused_with_the_reason(text):
    with pytest.raises(InputError, match="box"):
        parse_box(text, (10, 10, 10))


def test_crop_affine_keeps_every_voxel_in_place():
    affine = np.array([[0.0, 0, -2, 10], [1.5, 0, 0, -3], [0, 0.7, 0, 4], [0, 0, 0, 1]])
    box = ((3, 8), (2, 4), (5, 9))
    cropped = crop_affine(affine, box)
    voxel = np.array([1, 1, 2, 1.0])  # a voxel of the crop ...
    full_voxel = voxel + np.array([3, 2, 5, 0])  # ... and the same voxel in the full volume
    np.testing.assert_allclose(cropped @ voxel, affine @ full_voxel)


def test_paste_restores_the_inside_and_fills_the_outside_and_outside_error_is_what_is_lost():
    rng = np.random.default_rng(0)
    probs = rng.random((8, 9, 10, 3)).astype(np.float32)
    box = ((2, 5), (1, 9), (3, 7))
    fill = fill_value("probabilities", 3)
    pasted = paste(probs[box_slices(box)], box, (8, 9, 10), fill)
    inside = np.zeros((8, 9, 10), bool)
    inside[box_slices(box)] = True
    np.testing.assert_array_equal(pasted[inside], probs[inside])
    np.testing.assert_array_equal(pasted[~inside], np.broadcast_to(fill, (int((~inside).sum()), 3)))
    lost = float(np.max(np.abs(probs[~inside] - fill)))
    assert outside_error(probs, box, fill) == pytest.approx(lost)
    assert outside_error(probs, ((0, 8), (0, 9), (0, 10)), fill) == 0.0
    assert fill_value("entropy").shape == () and fill_value("entropy") == 0
