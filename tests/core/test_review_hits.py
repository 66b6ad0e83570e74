"""Errors inside the top review regions against random regions of the same shapes (core.review_hits)."""

from __future__ import annotations

import math

import numpy as np

from napari_uqseg.core.review import build_review
from napari_uqseg.core.review_hits import heldout_figures, review_hits


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
