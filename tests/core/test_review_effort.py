"""Region orders, errors found per effort and the simulated reader's correction, on a hand-made region image."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review import build_review, region_label_image
from napari_uqseg.core.review_effort import (
    corrected_label,
    effort_curve,
    errors_in_first,
    region_order,
    regions_within_budget,
)


def _regions() -> tuple[np.ndarray, np.ndarray]:
    """Three regions along a line: 1 (4 voxels, 1 error), 2 (2 voxels, 2 errors), 3 (3 voxels, 0 errors)."""
    regions = np.array([1, 1, 1, 1, 0, 2, 2, 0, 3, 3, 3, 0])
    errors = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1], bool)
    return regions, errors


def test_orders_and_effort():
    regions, errors = _regions()
    assert region_order(regions, errors, "uncertainty").tolist() == [1, 2, 3]
    assert region_order(regions, errors, "oracle").tolist() == [2, 1, 3]
    shuffled = region_order(regions, errors, "random", seed=4)
    assert sorted(shuffled.tolist()) == [1, 2, 3] and np.array_equal(
        shuffled, region_order(regions, errors, "random", 4)
    )
    sizes, found = effort_curve(regions, errors, np.array([2, 1, 3]))
    assert sizes.tolist() == [2, 6, 9] and found.tolist() == [2, 3, 3]
    assert errors_in_first(regions, errors, np.array([1, 2, 3]), 1) == 1
    assert errors_in_first(regions, errors, np.array([2, 1, 3]), 1) == 2
    assert regions_within_budget(regions, np.array([1, 2, 3]), 6.5).tolist() == [1, 2]
    assert regions_within_budget(regions, np.array([1, 2, 3]), 3).tolist() == []
    with pytest.raises(InputError):
        region_order(regions, errors, "alphabetical")


def test_reader_correction_only_inside_chosen_regions():
    regions, errors = _regions()
    truth = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1], np.uint8)
    prediction = np.where(errors, 1 - truth, truth).astype(np.uint8)
    fixed = corrected_label(prediction, truth, regions, np.array([2]))
    assert fixed.tolist() == [0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0]  # region 2 fixed, the rest as predicted
    with pytest.raises(InputError):
        corrected_label(prediction[:3], truth, regions, np.array([2]))


def test_region_label_image_matches_the_queue():
    rng = np.random.default_rng(1)
    u = rng.random((12, 14, 10))
    mask = np.zeros(u.shape, np.uint8)
    mask[3:9, 3:11, 2:8] = 1
    p1 = np.clip(1 - u, 0, 1)
    probs = np.stack([1 - p1, p1])
    ranking = build_review(u, mask, probabilities=probs, max_region_voxels=20)
    image = region_label_image(u, mask, probs, threshold=ranking.threshold, max_region_voxels=20)
    assert int(image.max()) == len(ranking.regions)
    for region in ranking.regions:
        assert int((image == region.id).sum()) == region.voxels


def test_roi_pieces_cover_the_roi_within_the_bound():
    from napari_uqseg.core.review_effort import roi_pieces

    roi = np.zeros((10, 12, 12), bool)
    roi[1:9, 2:11, 2:11] = True
    pieces = roi_pieces(roi, 40)
    assert np.array_equal(pieces > 0, roi)
    sizes = np.bincount(pieces.ravel())[1:]
    assert sizes.size == int(pieces.max()) and sizes.min() >= 1 and sizes.max() <= 40
