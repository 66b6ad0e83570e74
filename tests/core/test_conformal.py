"""Conformal volume intervals and conformal risk control, on constructed data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.core.calibrated_uncertainty import prediction_uncertainty_summary
from napari_uqseg.core.conformal import conformal_quantile, risk_control_index
from napari_uqseg.core.conformal_masks import (
    THRESHOLDS,
    conformal_masks,
    fit_mask_thresholds,
    inner_excess_curve,
    outer_miss_curve,
)
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume_intervals import (
    describe_volumes,
    fit_interval_quantiles,
    format_interval,
    interval_scores,
    volume_scales,
    volume_text,
    voxel_volume_ml,
)


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1, 20, dtype=float)[::-1]  # 19 scores, any order
    assert conformal_quantile(scores, 0.1) == 18.0  # rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.05) == 19.0  # rank 19 = n
    assert conformal_quantile(np.arange(1, 10.0), 0.05) == math.inf  # rank 10 > 9 cases: no honest bound


def test_bad_alpha_and_scores_are_named():
    with pytest.raises(InputError, match="alpha"):
        conformal_quantile(np.ones(5), 1.5)
    with pytest.raises(InputError, match="scores"):
        conformal_quantile(np.array([1.0, np.nan]), 0.1)


def _normal_coverage(q: float) -> float:
    """P(|Z| <= q) for a standard normal Z."""
    return math.erf(q / math.sqrt(2))


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_volume_intervals_cover_a_known_distribution(level):
    """Errors V_true - V_pred = scale * Z, Z ~ N(0, 1): the calibrated interval V_pred +- q * scale covers a
    new case with probability 2 Phi(q) - 1, whose mean over calibration draws must lie in
    [level, level + 1 / (n + 1)] (the split-conformal guarantee, tight for continuous scores)."""
    rng = np.random.default_rng(0)
    n, trials = 29, 4000
    coverage = []
    for _ in range(trials):
        scale = rng.uniform(20, 200, n)  # voxels, differs per case: the scale must be used
        predicted = rng.uniform(2000, 4000, n)
        true = predicted + scale * rng.standard_normal(n)
        q = fit_interval_quantiles(interval_scores(true, predicted, scale), (level,))[f"{level:g}"]
        coverage.append(_normal_coverage(q))
    mean = float(np.mean(coverage))
    se = float(np.std(coverage)) / math.sqrt(trials)
    assert level - 3 * se <= mean <= level + 1 / (n + 1) + 3 * se


def test_volume_scales_have_the_bernoulli_and_sample_formulas():
    p = np.zeros((2, 4))
    p[1] = [0.5, 0.5, 1.0, 0.0]
    p[0] = 1 - p[1]
    scales = volume_scales(p, None, 1)
    assert set(scales) == {"bernoulli"}
    np.testing.assert_allclose(scales["bernoulli"], [math.sqrt(0.5)] * 2)  # sqrt(0.25 + 0.25)
    # two samples per voxel, 0 and 1 on the first voxel: variance 0.5 (ddof 1), std sqrt(0.5)
    mean_sq = p.copy()
    mean_sq[:, 0] = 0.5
    mean_sq[:, 1] = 0.25
    scales = volume_scales(p, mean_sq, 2)
    np.testing.assert_allclose(scales["samples"], [math.sqrt(0.5), math.sqrt(0.5)])


def test_describe_volumes_reports_ml_and_intervals():
    affine = np.diag([2.0, 1.0, 1.0, 1.0])  # 2 mm^3 voxels
    assert voxel_volume_ml(affine) == pytest.approx(0.002)
    mask = np.zeros((10, 10, 10), np.uint8)
    mask[:5] = 1  # 500 voxels = 1 mL
    scales = {"bernoulli": np.array([0.0, 10.0])}
    out = describe_volumes(mask, scales, 0.002, {"source": "bernoulli", "classes": {"1": {"0.9": 2.0}}})
    assert out["classes"]["1"]["volume"] == pytest.approx(1.0)
    assert out["classes"]["1"]["intervals"]["0.9"] == pytest.approx([0.96, 1.04])  # 500 -+ 2 * 10 voxels
    assert volume_text(out, {"1": "anterior"}) == ["anterior: 1.00 mL (90 % interval 0.96-1.04 mL)"]
    assert (
        format_interval([0.5, None]) == format_interval([0.5, math.inf]) == "0.50-unbounded (too few calibration cases)"
    )
    assert format_interval(None) == "not calibrated"
    uncalibrated = describe_volumes(mask, scales, 0.002)
    assert not uncalibrated["calibrated"] and "intervals" not in uncalibrated["classes"]["1"]


def test_risk_control_index_on_a_constructed_case():
    # three cases, losses falling along five parameters; corrected mean = 3/4 * mean + 1/4
    losses = np.array([[1.0, 0.6, 0.3, 0.1, 0.0], [1.0, 0.5, 0.2, 0.0, 0.0], [1.0, 0.4, 0.1, 0.0, 0.0]])
    # corrected: 1, 0.6, 0.4, 0.275, 0.25
    assert risk_control_index(losses, 0.3) == 3
    assert risk_control_index(losses, 0.25) == 4
    assert risk_control_index(losses, 0.2) is None
    with pytest.raises(InputError, match="losses"):
        risk_control_index(losses + 1, 0.3)


def test_outer_threshold_on_a_constructed_case():
    """A 100-voxel structure with p = 0.005, 0.015, ..., 0.995 in 19 identical cases: at risk 0.1 the
    corrected miss 19/20 FNR + 1/20 <= 0.1 allows FNR <= 0.0526, i.e. 5 missed voxels, and the highest
    such threshold is 0.055 (p = 0.055 is not missed by p >= 0.055)."""
    prob = np.concatenate([(np.arange(100) + 0.5) / 100, np.zeros(50)])
    truth = np.arange(150) < 100
    curve = outer_miss_curve(prob, truth)
    assert curve[np.searchsorted(THRESHOLDS, 0.055)] == pytest.approx(0.05)
    inner = inner_excess_curve(prob, truth)
    assert inner.max() == 0.0  # background voxels have p = 0: no threshold > 0 includes them
    fitted = fit_mask_thresholds(np.tile(curve, (19, 1)), np.tile(inner, (19, 1)), 0.1)
    assert fitted["outer"] == pytest.approx(0.055)
    # the inner threshold alone would be the smallest (no background above 0); it is raised to nest inside
    assert risk_control_index(np.tile(inner, (19, 1)), 0.1) == 0
    assert fitted["inner"] == pytest.approx(0.055)


def test_outer_masks_keep_the_expected_miss_rate_on_new_cases():
    """Simulated cases whose structure probabilities vary per case: the calibrated outer threshold's
    miss rate on fresh cases, averaged over calibrations, stays at or below the target."""
    rng = np.random.default_rng(1)

    def case():
        truth = rng.random(400) < 0.5
        sharp = rng.uniform(2, 8)
        prob = 1 / (1 + np.exp(-sharp * (np.where(truth, 1.0, -1.0) + rng.normal(0, 1, 400))))
        return prob, truth

    realised = []
    for _ in range(60):
        cal = [case() for _ in range(30)]
        curves = np.stack([outer_miss_curve(p, t) for p, t in cal])
        inner = np.stack([inner_excess_curve(p, t) for p, t in cal])
        t_out = fit_mask_thresholds(curves, inner, 0.05)["outer"]
        realised += [np.mean(p[t] < t_out) for p, t in (case() for _ in range(20))]
    assert np.mean(realised) <= 0.05 + 0.01
    # conformal risk control pays B / (n + 1) = 1/31 for finite samples: about 2 %, not 0 % (no all-voxel mask)
    assert np.mean(realised) >= 0.01


def test_conformal_masks_apply_thresholds_with_rounding_tolerance():
    prob = np.array([[0.9, 0.5, 0.1], [0.1, 0.5, 0.9]])
    cal = {"risk": 0.05, "classes": {"1": {"outer": 0.5, "inner": 0.9}}}
    masks = conformal_masks(prob, cal)
    assert masks["1"]["outer"].tolist() == [False, True, True]
    assert masks["1"]["inner"].tolist() == [False, False, True]
    widened = conformal_masks(prob, {"classes": {"1": {"outer": 0.55, "inner": 0.85}}}, tolerance=0.06)
    assert widened["1"]["outer"].tolist() == [False, True, True]
    assert widened["1"]["inner"].tolist() == [False, False, False]
    with pytest.raises(InputError, match="class 3"):
        conformal_masks(prob, {"classes": {"3": {"outer": 0.5}}})


def test_prediction_summary_uses_the_entry_of_its_tta_mode():
    prob = np.zeros((2, 4, 4, 4))
    prob[1, :2] = 0.8
    prob[0] = 1 - prob[1]
    mask = (prob[1] > 0.5).astype(np.uint8)
    entry = {
        "volume_source": "samples",  # unavailable for one sample: falls back to bernoulli
        "volume": {"bernoulli": {"1": {"0.9": 1.0}}},
        "masks": {"risk": 0.05, "classes": {"1": {"outer": 0.1, "inner": 0.9}}},
    }
    out = prediction_uncertainty_summary(prob, None, 1, mask, np.eye(4), entry)
    assert out["volumes"]["source"] == "bernoulli"
    lo, hi = out["volumes"]["classes"]["1"]["intervals"]["0.9"]
    assert hi - lo == pytest.approx(2 * math.sqrt(32 * 0.16) / 1000)
    assert "5 %" in out["conformal_masks"]["text"]
    assert "conformal_masks" not in prediction_uncertainty_summary(prob, None, 1, mask, np.eye(4), None)
