"""Errors inside the top review regions against random regions of the same shapes (core.review_hits)."""

from __future__ import annotations

import math

import numpy as np

from napari_uqseg.core.review import build_review
from napari_uqseg.core.review_hits import error_rate_by_uncertainty, heldout_figures, review_hits


def _case():
    """A 40^3 'organ' with one uncertain blob that holds all the errors, and faint noise elsewhere."""
    rng = np.random.default_rng(0)
    mask = np.zeros((40, 40, 40), np.int64)
    mask[5:35, 5:35, 5:35] = 1
    u = rng.uniform(0, 0.05, mask.shape)
    u[10:16, 10:16, 10:16] = 1.0
    errors = np.zeros(mask.shape, bool)
    errors[11:15, 11:15, 11:15] = True
    return mask, u, errors


def test_errors_inside_the_top_region_beat_random_regions():
    mask, u, errors = _case()
    ranking = build_review(u, mask, axis=2)
    hits = review_hits(errors, u, ranking, mask != 0, top=5, trials=100)
    assert hits["errors"] == 64 and hits["top_regions"] >= 1
    assert hits["share_top"] == 1.0  # the blob is the top region and holds every error
    assert hits["share_random"] < 0.2 and hits["random_p95"] < 1.0
    assert math.isclose(hits["share_random_voxels"], hits["region_voxels"] / hits["roi_voxels"])


def test_no_errors_gives_nan_and_heldout_figures_report_volumes():
    mask, u, _ = _case()
    ranking = build_review(u, mask, axis=2)
    hits = review_hits(np.zeros(mask.shape, bool), u, ranking, mask != 0)
    assert hits["errors"] == 0 and math.isnan(hits["share_top"]) and math.isnan(hits["share_random"])
    figures = heldout_figures(mask, mask, u, ranking, {"0": "background", "1": "organ"}, voxel_ml=0.008)
    assert figures["dice"] == {"organ": 1.0}
    assert figures["volume_ml"] == {"organ": round(30**3 * 0.008, 1)}
    assert figures["case_score"] == ranking.case_score


def _one_region_case():
    """A 40^3 organ; one uncertain 6^3 blob (the only region above threshold 0.5) holding 64 of 128 errors."""
    mask = np.zeros((40, 40, 40), np.int64)
    mask[5:35, 5:35, 5:35] = 1
    u = np.zeros(mask.shape)
    u[10:16, 10:16, 10:16] = 1.0
    errors = np.zeros(mask.shape, bool)
    errors[11:15, 11:15, 11:15] = True  # 64 errors inside the blob
    errors[26:30, 26:30, 26:30] = True  # 64 errors the uncertainty misses
    return mask, u, errors


def test_error_rate_of_the_top_region_against_random_regions_the_area_and_the_oracle():
    mask, u, errors = _one_region_case()
    ranking = build_review(u, mask, axis=2, threshold=0.5)
    assert len(ranking.regions) == 1 and ranking.regions[0].voxels == 216
    roi = mask != 0
    hits = review_hits(errors, u, ranking, roi, top=5, trials=200)
    assert (hits["top_regions"], hits["region_voxels"], hits["region_errors"]) == (1, 216, 64)
    assert hits["precision_top"] == 64 / 216 and hits["share_top"] == 64 / 128
    assert hits["precision_roi"] == 128 / 30**3
    assert hits["precision_oracle"] == 128 / 216 and hits["share_oracle"] == 1.0
    # a 6^3 cube dropped at random into the 30^3 organ rarely meets the two 4^3 error cubes
    assert hits["precision_random"] < 0.05 and hits["precision_random_p95"] < hits["precision_top"]
    assert 0.0 <= hits["precision_random_p5"] <= hits["precision_random_p95"]  # mostly misses, a few hits


def test_random_regions_in_an_all_wrong_area_are_all_wrong_and_count_only_its_voxels():
    mask, u, _ = _one_region_case()
    ranking = build_review(u, mask, axis=2, threshold=0.5)
    roi = mask != 0
    hits = review_hits(roi.copy(), u, ranking, roi, trials=50)  # every voxel of the area is wrong
    assert hits["precision_random"] == 1.0 and hits["precision_random_p5"] == 1.0
    assert hits["precision_top"] == 1.0 and hits["precision_roi"] == 1.0
    assert hits["share_random"] <= 216 / 30**3  # cubes cut at the organ's edge count only their voxels inside


def test_no_region_gives_nan_error_rates():
    mask, u, errors = _one_region_case()
    ranking = build_review(u, mask, axis=2, threshold=2.0)  # nothing above the threshold
    hits = review_hits(errors, u, ranking, mask != 0)
    assert hits["top_regions"] == 0 and hits["region_voxels"] == 0
    assert math.isnan(hits["precision_top"]) and math.isnan(hits["precision_random"])
    assert hits["share_top"] == 0.0 and hits["precision_roi"] == 128 / 30**3


def test_error_rate_of_the_most_and_least_uncertain_voxels():
    u = np.arange(100, dtype=float).reshape(10, 10)  # voxel i has uncertainty i
    errors = np.zeros((10, 10), bool)
    errors.ravel()[95:] = True  # the 5 most uncertain voxels are wrong
    errors.ravel()[:2] = True  # and 2 of the least uncertain
    rates = error_rate_by_uncertainty(errors, u, np.ones((10, 10), bool), most=0.1, least=0.5)
    assert rates["most_uncertain"] == 5 / 10 and rates["least_uncertain"] == 2 / 50
    roi = np.zeros((10, 10), bool)
    roi.ravel()[90:] = True  # only the top row counts: its 5 most uncertain are all wrong
    assert error_rate_by_uncertainty(errors, u, roi, most=0.5, least=0.5)["most_uncertain"] == 1.0
