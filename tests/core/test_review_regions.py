"""Review regions are bounded in size and ranked by their probably wrong voxels (tiny constructed volumes)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.region_split import bisect_points, split_large_components
from napari_uqseg.core.review import build_review, find_regions, review_recall
from napari_uqseg.core.review_ranking import ReviewRanking


def _shell() -> tuple[np.ndarray, np.ndarray]:
    """(20, 24, 24) mask: a 12^3 cube; uncertainty 0.6 on its 1-voxel boundary shell, 0.01 elsewhere."""
    mask = np.zeros((20, 24, 24), np.uint8)
    mask[4:16, 6:18, 6:18] = 1
    inner = ndimage.binary_erosion(mask)
    u = np.full(mask.shape, 0.01)
    u[(mask > 0) & ~inner] = 0.6
    return u, mask


def test_bisect_points_partitions_within_the_bound():
    coords = np.argwhere(np.ones((5, 7, 3), bool))
    groups = bisect_points(coords, 10)
    assert all(g.size <= 10 for g in groups)
    assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(len(coords)))
    with pytest.raises(InputError):
        bisect_points(coords, 0)


def test_split_keeps_every_voxel_and_each_piece_connected():
    u, mask = _shell()
    hot = u > 0.5
    labels, n = ndimage.label(hot, structure=np.ones((3, 3, 3), bool))
    assert n == 1 and hot.sum() > 500  # the whole shell is one component
    split, m = split_large_components(labels, n, 64)
    assert m > 1 and np.array_equal(split > 0, hot)
    sizes = np.bincount(split.ravel())[1:]
    assert sizes.max() <= 64 and sizes.min() >= 1
    for lab in range(1, m + 1):
        _, parts = ndimage.label(split == lab, structure=np.ones((3, 3, 3), bool))
        assert parts == 1, f"piece {lab} is not connected"


@pytest.mark.parametrize("bound", [27, 64, 256])
def test_no_region_above_the_bound(bound):
    u, mask = _shell()
    ranking = build_review(u, mask, min_voxels=1, threshold=0.5, max_regions=None, max_region_voxels=bound)
    assert ranking.max_region_voxels == bound
    assert ranking.regions and max(r.voxels for r in ranking.regions) <= bound
    assert sum(r.voxels for r in ranking.regions) == int((u > 0.5).sum())  # nothing lost by splitting
    for r in ranking.regions:  # a bounded region also has a bounded box
        extent = [b - a for a, b in r.bbox]
        assert np.prod(extent) <= 12 * 12 * 12


def test_regions_ranked_by_probably_wrong_voxels():
    """A hot but confident blob ranks below a milder one whose predicted class is a coin flip."""
    u = np.full((16, 12, 12), 0.01)
    mask = np.zeros(u.shape, np.uint8)
    mask[1:15, 1:11, 1:11] = 1
    u[2:5, 2:5, 2:5] = 0.9  # A: 27 voxels, mass 24.3, confidence 0.95
    u[9:12, 6:9, 6:9] = 0.5  # B: 27 voxels, mass 13.5, confidence 0.55
    p1 = np.where(mask > 0, 0.99, 0.01)
    p1[2:5, 2:5, 2:5] = 0.95
    p1[9:12, 6:9, 6:9] = 0.55
    probabilities = np.stack([1 - p1, p1])
    by_mass, _ = find_regions(u, mask > 0, threshold=0.2, axis=0)
    assert by_mass[0].bbox[0] == (2, 5)  # without probabilities: mass order, A first
    ranked, _ = find_regions(u, mask > 0, threshold=0.2, axis=0, probabilities=probabilities)
    assert [r.bbox[0] for r in ranked] == [(9, 12), (2, 5)]
    assert ranked[0].expected_errors == pytest.approx(27 * 0.45)
    assert ranked[1].expected_errors == pytest.approx(27 * 0.05)
    with pytest.raises(InputError, match="probabilities"):
        find_regions(u, probabilities=probabilities[:, :3])


def test_review_json_round_trip_and_old_files():
    u, mask = _shell()
    p1 = np.where(u > 0.5, 0.7, np.where(mask > 0, 0.99, 0.01))
    ranking = build_review(u, mask, probabilities=np.stack([1 - p1, p1]), method="deterministic", threshold=0.5)
    again = ReviewRanking.from_dict(ranking.to_dict())
    assert again == ranking and again.rank_by == "expected_errors" and again.regions[0].expected_errors > 0
    old = ranking.to_dict()
    for key in ("case_score_name", "case_scores", "rank_by", "max_region_voxels"):
        del old[key]
    for region in old["regions"]:
        del region["expected_errors"]
    legacy = ReviewRanking.from_dict(old)  # review.json written before the bound still reads
    assert legacy.max_region_voxels == 0 and legacy.regions[0].expected_errors == 0.0


def test_review_recall_uses_bounded_regions():
    u, mask = _shell()
    errors = u > 0.5
    roi = mask > 0
    # the whole shell is one component: unbounded it would not fit a 10 % budget and only its top voxels count
    small = review_recall(u, errors, roi, budget=0.1, threshold=0.5, min_voxels=1, max_region_voxels=50)
    assert 0 < small <= 1
    with pytest.raises(InputError):
        review_recall(u, errors, roi, budget=0.1, bogus=1)
