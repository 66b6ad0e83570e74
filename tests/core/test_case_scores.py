"""Case scores rank constructed cases from good to failed, and build_review exposes the method's default."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from napari_uqseg.core.case_scores import (
    DEFAULT_CASE_SCORE,
    FALLBACK_CASE_SCORE,
    case_score_for,
    case_scores,
    choose_case_score,
    expected_dice_score,
)
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.metrics import mean_dice
from napari_uqseg.core.review import build_review, foreground_roi


def _case(blur: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sphere whose predicted probability boundary is ``blur`` voxels soft; truth drawn from those probabilities.

    Returns probabilities (2, *S), predicted mask, ground truth: softer boundaries give both more uncertainty
    and more real errors (the truth is sampled from a calibrated probability).
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:24, :24, :24]
    r = np.sqrt((z - 12) ** 2 + (y - 12) ** 2 + (x - 12) ** 2)
    p1 = 1 / (1 + np.exp((r - 7) / max(blur, 1e-3)))
    truth = (rng.random(p1.shape) < p1).astype(np.uint8)
    mask = (p1 > 0.5).astype(np.uint8)
    return np.stack([1 - p1, p1]), mask, truth


def test_expected_dice_hand_values():
    p = np.zeros((2, 4)) + [[0.0], [1.0]]
    assert expected_dice_score(p, np.ones(4, np.uint8)) == pytest.approx(0.0)  # sure and agreeing
    p = np.array([[0.5, 0.5, 1, 1], [0.5, 0.5, 0, 0]])
    # predicted {0, 1}: 2 * 1.0 / (1.0 + 2) = 2/3
    assert expected_dice_score(p, np.array([1, 1, 0, 0])) == pytest.approx(1 - 2 / 3)
    assert expected_dice_score(np.stack([np.ones(4), np.zeros(4)]), np.zeros(4, np.uint8)) == 0.0  # nothing there


def test_scores_rank_constructed_cases_by_failure():
    cases = [_case(blur, seed) for seed, blur in enumerate([0.2, 0.5, 1.0, 1.5, 2.5, 3.5])]
    one_minus_dice = [1 - mean_dice(m, t, 2) for _, m, t in cases]
    assert np.all(np.diff(one_minus_dice) > 0)  # the construction: softer means worse
    rows = []
    for p, m, _ in cases:
        maps = {"entropy": -(p * np.log(np.clip(p, 1e-12, None))).sum(0)}
        rows.append(case_scores(p, m, maps, foreground_roi(m), "entropy"))
    for name in ("expected_dice", "expected_error_ratio", "mean_uncertainty"):
        rho = stats.spearmanr([r[name] for r in rows], one_minus_dice).statistic
        assert rho == pytest.approx(1.0), name


def test_default_per_method_and_fallback():
    scores = {"expected_dice": 0.1, "mean_uncertainty": 0.3}
    for method, name in DEFAULT_CASE_SCORE.items():
        assert case_score_for({**scores, name: 0.7}, method) == (name, 0.7)
    assert case_score_for(scores, "unknown_method") == (FALLBACK_CASE_SCORE, scores[FALLBACK_CASE_SCORE])
    assert case_score_for(scores, None)[0] == FALLBACK_CASE_SCORE


def test_a_models_own_case_score_comes_before_its_methods_default():
    scores = {"expected_dice": 0.1, "expected_error_ratio": 0.2, "mean_uncertainty": 0.3}
    assert case_score_for(scores, "deterministic", "mean_uncertainty") == ("mean_uncertainty", 0.3)
    # a stored choice the prediction cannot compute (a sampling score, no samples) falls back to the method's
    assert case_score_for(scores, "deterministic", "volume_spread") == ("expected_error_ratio", 0.2)


def test_the_chosen_case_score_ranks_failures_best_among_the_shift_detectors():
    spearman = {"expected_dice": 0.30, "expected_error_ratio": 0.25, "mean_uncertainty": 0.40}
    auroc = {"expected_dice": 0.95, "expected_error_ratio": 0.99, "mean_uncertainty": 0.31}
    # the best ranker misses the shift: the best ranker among those that catch it
    assert choose_case_score(spearman, auroc) == "expected_dice"
    # none detects the shift: the best detector
    assert choose_case_score(spearman, {"expected_dice": 0.6, "expected_error_ratio": 0.7}) == "expected_error_ratio"
    # the shift not measured: Spearman alone; a NaN Spearman never wins
    assert choose_case_score(spearman, {}) == "mean_uncertainty"
    assert choose_case_score({**spearman, "mean_uncertainty": float("nan")}, {}) == "expected_dice"
    with pytest.raises(InputError, match="no case score"):
        choose_case_score({}, {})


def test_build_review_case_score_is_the_entry_point():
    p, mask, _ = _case(1.5, 3)
    u = -(p * np.log(np.clip(p, 1e-12, None))).sum(0)
    ranking = build_review(u, mask, probabilities=p, method="deterministic", maps={"class_std": 0.1 * u})
    name = DEFAULT_CASE_SCORE["deterministic"]
    assert ranking.case_score_name == name and ranking.case_score == pytest.approx(ranking.case_scores[name])
    assert "volume_spread" in ranking.case_scores
    plain = build_review(u, mask)  # no probabilities: the mean uncertainty, as before
    assert plain.case_score_name == "mean_uncertainty" and plain.rank_by == "mass"
    with pytest.raises(InputError):
        case_scores(p[:, :3], mask, {"entropy": u}, foreground_roi(mask), "entropy")
