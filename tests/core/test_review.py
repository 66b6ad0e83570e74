"""Review queue on tiny synthetic volumes with planted uncertain blobs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review import (
    build_review,
    case_score,
    find_regions,
    foreground_roi,
    review_recall,
    slice_scores,
)
from napari_uqseg.core.review_ranking import Region, ReviewRanking


def _planted() -> tuple[np.ndarray, np.ndarray]:
    """(16, 10, 10) map: 0.01 background, blob A 0.9 on 2x2x2, blob B 0.5 on 3x3x3; mask a 10x8x8 box."""
    u = np.full((16, 10, 10), 0.01)
    u[2:4, 2:4, 2:4] = 0.9  # A: 8 voxels, mass 7.2
    u[7:10, 5:8, 5:8] = 0.5  # B: 27 voxels, mass 13.5
    mask = np.zeros(u.shape, np.uint8)
    mask[1:11, 1:9, 1:9] = 1
    return u, mask


def test_foreground_roi_dilation_and_fallback():
    line = np.array([0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(foreground_roi(line, 2), [0, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(foreground_roi(line, 0), line.astype(bool))
    assert foreground_roi(np.zeros((3, 3)), 2).all()  # empty prediction -> whole volume
    with pytest.raises(InputError):
        foreground_roi(line, -1)


def test_case_score_hand_values():
    u, mask = _planted()
    # dilation 0: 640 mask voxels, sum 7.2 + 13.5 + (640 - 35) * 0.01 = 26.75
    assert case_score(u, mask, dilation=0) == pytest.approx(26.75 / 640)
    # top 1 % of 640 -> ceil(6.4) = 7 values, all 0.9
    assert case_score(u, mask, dilation=0, top_percent=1) == pytest.approx(0.9)
    # top 5 % -> 32 values: 8 x 0.9 + 24 x 0.5 = 19.2
    assert case_score(u, mask, dilation=0, top_percent=5) == pytest.approx(0.6)
    # empty prediction -> mean over the whole volume
    assert case_score(u, np.zeros_like(mask)) == pytest.approx(u.mean())
    with pytest.raises(InputError):
        case_score(u, mask, top_percent=0)
    with pytest.raises(InputError):
        case_score(u, mask[:5])


def test_slice_scores():
    u, mask = _planted()
    scores = slice_scores(u, mask, axis=0, dilation=2)
    assert scores.shape == (16,)
    # the mask spans slices 1..10; dilated by 2 it reaches 0..12, slices 13..15 have no ROI -> 0
    np.testing.assert_array_equal(scores[13:], 0.0)
    assert scores[12] == pytest.approx(0.01) and scores[5] == pytest.approx(0.01)
    roi = foreground_roi(mask, 2)
    for i in (2, 8):
        assert scores[i] == pytest.approx(u[i][roi[i]].mean())
    # B slices carry 9 x 0.5 = 4.5 per slice, A slices 4 x 0.9 = 3.6, over equal ROI counts
    order = ReviewRanking("entropy", 0, 0.0, list(scores)).slices_by_score()
    assert set(order[:3]) == {7, 8, 9} and set(order[3:5]) == {2, 3}


def test_find_regions_order_and_geometry():
    u, mask = _planted()
    regions, threshold = find_regions(u, foreground_roi(mask, 2), axis=0)
    assert threshold == pytest.approx(0.01)  # 90 % quantile of an ROI that is mostly 0.01
    assert [r.id for r in regions] == [1, 2]
    b, a = regions  # B first: mass 13.5 beats A's 7.2 although A is hotter
    assert (b.voxels, b.score, b.peak, b.mass) == (27, pytest.approx(0.5), pytest.approx(0.5), pytest.approx(13.5))
    assert b.centroid == pytest.approx((8.0, 6.0, 6.0))
    assert b.bbox == ((7, 10), (5, 8), (5, 8))
    assert b.slice_index == 8
    assert (a.voxels, a.score, a.mass) == (8, pytest.approx(0.9), pytest.approx(7.2))
    assert a.centroid == pytest.approx((2.5, 2.5, 2.5))
    assert a.bbox == ((2, 4), (2, 4), (2, 4))
    assert a.slice_index == 3  # 2.5 rounds half up
    regions, _ = find_regions(u, axis=2, threshold=0.2)
    assert regions[0].slice_index == 6 and regions[1].slice_index == 3
    assert len(find_regions(u, threshold=0.2, max_regions=1)[0]) == 1


def test_find_regions_connectivity_and_min_voxels():
    u = np.zeros((6, 6, 6))
    u[1, 1, 1] = u[2, 2, 2] = 1.0  # touch only at a corner: one region under full connectivity
    u[4, 4, 4] = 0.8  # a single hot voxel
    regions, _ = find_regions(u, threshold=0.5, min_voxels=1)
    assert [r.voxels for r in regions] == [2, 1]
    regions, _ = find_regions(u, threshold=0.5, min_voxels=2)
    assert [r.voxels for r in regions] == [2]
    roi = np.zeros(u.shape, bool)
    roi[3:] = True  # only the single voxel is inside
    regions, _ = find_regions(u, roi=roi, threshold=0.5, min_voxels=1)
    assert [r.centroid for r in regions] == [(4.0, 4.0, 4.0)]
    assert find_regions(np.zeros((4, 4)), min_voxels=1) == ([], 0.0)  # flat map: nothing above its quantile


def test_build_review_json_round_trip_and_states():
    u, mask = _planted()
    ranking = build_review(u, mask, axis=0, map_name="mutual_information")
    assert ranking.map_name == "mutual_information" and len(ranking.slice_scores) == 16
    assert ranking.case_score == pytest.approx(case_score(u, mask))
    assert [r.voxels for r in ranking.regions] == [27, 8]
    ranking.set_state(2, "done")
    ranking.set_state(1, "flagged")
    assert ranking.reviewed_count() == 2
    ranking.set_state(1, "todo")
    assert ranking.reviewed_count() == 1
    with pytest.raises(InputError):
        ranking.set_state(1, "ignored")
    with pytest.raises(InputError):
        ranking.set_state(9, "done")
    restored = ReviewRanking.from_dict(json.loads(json.dumps(ranking.to_dict())))
    assert restored == ranking
    assert isinstance(restored.regions[0].bbox[0], tuple) and restored.regions[1].state == "done"
    assert Region.from_dict(ranking.regions[0].to_dict()) == ranking.regions[0]


def _recall_case() -> tuple[np.ndarray, np.ndarray]:
    """(10,10,10): blob 1 (64 voxels at 0.8), blob 2 (36 at 0.7 + 24 at 0.4); 50 error voxels."""
    u = np.zeros((10, 10, 10))
    u[1:5, 5:9, 5:9] = 0.8  # mass 51.2
    u[6:9, 0:4, 0:3] = 0.7  # blob 2 = [6:9, 0:4, 0:5], mass 25.2 + 9.6 = 34.8
    u[6:9, 0:4, 3:5] = 0.4
    err = np.zeros(u.shape, bool)
    err[1, 5:9, 5:9] = True  # 16 errors: the first 16 voxels of blob 1 in raster order
    err.flat[np.flatnonzero(u == 0.7)[:20]] = True  # 20 errors among blob 2's hottest voxels
    err.flat[np.flatnonzero(u == 0.4)[:6]] = True  # 6 in blob 2's cooler part
    err[9, 9, 0:8] = True  # 8 errors where the map is certain
    assert err.sum() == 50
    return u, err


def test_review_recall_planted():
    u, err = _recall_case()
    # budget 100 voxels: blob 1 (64) whole, then blob 2's 36 most uncertain = its 0.7 part -> (16 + 20) / 50
    assert review_recall(u, err, None, 0.10, threshold=0.1) == pytest.approx(0.72)
    # default threshold (90 % quantile = 0.43) splits off the 0.7 part: 64 + 36 = 100 voxels, same answer
    assert review_recall(u, err, None, 0.10) == pytest.approx(0.72)
    # budget 50: blob 1 alone crosses it; its 50 first voxels (ties by index) hold all 16 errors
    assert review_recall(u, err, None, 0.05, threshold=0.1) == pytest.approx(16 / 50)
    # everything reviewed: only the 8 certain errors are missed
    assert review_recall(u, err, None, 1.0, threshold=0.1) == pytest.approx(42 / 50)
    # errors outside the ROI do not count: 992 ROI voxels -> budget 99.2 -> 64 + 35 voxels
    roi = ~err.copy()
    roi[:9] = True
    assert review_recall(u, err, roi, 0.10, threshold=0.1) == pytest.approx(36 / 42)


def test_review_recall_edge_cases():
    u, err = _recall_case()
    assert math.isnan(review_recall(u, np.zeros_like(err), None))
    with pytest.raises(InputError):
        review_recall(u, err, None, budget=0.0)
    with pytest.raises(InputError):
        review_recall(u, err, None, dilation=3)
    with pytest.raises(InputError):
        review_recall(u, err[:5], None)
