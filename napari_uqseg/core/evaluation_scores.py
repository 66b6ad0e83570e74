"""Per-case and aggregate figures of an evaluation (numpy): quality, calibration, error detection, review.

Definitions are in ``DEFINITIONS`` below; targets in docs/evaluation.md. Voxel figures are computed in
the ROI (default: the ground-truth foreground bounding box), per case and pooled over the voxels of all
cases; Dice on the whole volume. ``engine.evaluation`` runs the predictions and writes the report folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_uqseg.core import calibration, metrics, ranking_metrics
from napari_uqseg.core.json_values import clean_json
from napari_uqseg.core.report import CaseRow, subsample_curve
from napari_uqseg.core.review import case_score, review_recall

#: maps bounded by log C (nats); UEO divides them by log C, other maps by their maximum in the case ROI
ENTROPY_MAPS = ("entropy", "expected_entropy", "mutual_information")

#: what each aggregate figure means, stored in report.json next to the numbers
DEFINITIONS = {
    "dice": "mean over foreground classes per case (whole volume), then mean over cases",
    "ece": "top-label ECE, equal-width bins, in the ROI; *_mean over cases, *_pooled over all ROI voxels",
    "ece_whole": "the same ECE over every voxel of the volume",
    "brier": "sum over classes of squared error, mean over ROI voxels (range [0, 2])",
    "nll": "mean -log p(true class) over ROI voxels",
    "auroc/aupr": "uncertainty as a score for 'voxel misclassified' in the ROI; aupr chance level = error_rate",
    "aurc/e_aurc": "area under the voxel risk-coverage curve / minus the oracle's",
    "ueo": "best-threshold Dice of {normalised uncertainty > t} with the error map (Jungo & Reyes 2019)",
    "review_recall": "share of ROI error voxels inside the top uncertain regions covering the budget of ROI voxels",
    "case_score": "mean uncertainty over the predicted foreground dilated by 2 voxels (core.review.case_score)",
    "case_spearman": "Spearman(case_score, 1 - Dice) over cases",
    "case_failure_auroc": "AUROC of case_score for Dice < failure_dice",
}


@dataclass
class EvalSettings:
    """Options of an evaluation.

    Attributes
    ----------
    map_name : str
        Uncertainty map used as the score (must be one the model produces).
    roi : str
        ``core.metrics.ROI_KINDS``: ``gt_bbox`` (default), ``union_bbox`` or ``whole``.
    ece_bins : int
        Equal-width ECE bins.
    review_budget : float
        Share of ROI voxels a reader reviews for ``review_recall``.
    failure_dice : float
        Cases below this Dice count as failures for ``case_failure_auroc``.
    keep_probabilities : bool
        Also write ``probabilities.nii.gz`` per case (C float32 volumes: large).
    seed : int
        Seed of the shifts and of stochastic methods (per case, see ``core.shifts.case_seed``).
    tta : str
        Test-time augmentation mode (``engine.tta.TTA_MODES``), ``"none"`` by default.
    """

    map_name: str = "entropy"
    roi: str = "gt_bbox"
    ece_bins: int = 100
    review_budget: float = 0.10
    failure_dice: float = 0.8
    keep_probabilities: bool = False
    seed: int = 0
    tta: str = "none"


def _normalised(u: np.ndarray, map_name: str, num_classes: int) -> np.ndarray:
    """Uncertainty in [0, 1] for UEO: entropies / log C, other maps / their maximum in the ROI."""
    scale = np.log(num_classes) if map_name in ENTROPY_MAPS else float(u.max(initial=0.0))
    return np.clip(u / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(u)


def _optimal_risk(coverage: np.ndarray, n: int, n_errors: int) -> np.ndarray:
    """Oracle selective risk ``max(0, k - (N - N_e)) / k`` at coverage ``k / N``."""
    k = np.maximum(np.round(np.asarray(coverage) * n), 1.0)
    return np.maximum(0.0, k - (n - n_errors)) / k


def score_case(
    prob: np.ndarray,
    pred: np.ndarray,
    target: np.ndarray,
    maps: dict[str, np.ndarray],
    settings: EvalSettings,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Every per-case figure of one prediction.

    Parameters
    ----------
    prob : np.ndarray
        ``(C, *S)`` mean class probabilities.
    pred, target : np.ndarray
        ``(*S)`` predicted and true labels.
    maps : dict
        Map name -> ``(*S)`` uncertainty.
    settings : EvalSettings

    Returns
    -------
    figures : dict
        ``CaseRow`` figures (``dice``, ``ece`` ...).
    curves : dict
        ``reliability`` bins (numpy), ``risk_coverage`` and ``dice_after_removal`` (for case.json).
    pooled : dict
        ROI voxels to pool over cases: ``errors``, ``pred``, ``target`` ``(N,)``, ``maps`` {name: ``(N,)``},
        the ROI and whole-volume reliability bins, ``n_roi``, ``case_scores`` {map: float}.
    """
    roi = metrics.roi_mask(target, settings.roi, pred)
    conf, correct = calibration.top_label(prob[:, roi], target[roi])
    errors = ~correct
    bins = calibration.reliability_bins(conf, correct, settings.ece_bins)
    conf_all, correct_all = calibration.top_label(prob, target)
    bins_whole = calibration.reliability_bins(conf_all, correct_all, settings.ece_bins)
    eces = calibration.ece_from_bins(bins), calibration.ece_from_bins(bins_whole)
    figures = _case_figures(prob, pred, target, maps[settings.map_name], roi, errors, eces, settings)
    u = maps[settings.map_name][roi].astype(np.float64)
    curves = {"reliability": bins, **_case_curves(u, pred[roi], target[roi], errors, prob.shape[0])}
    pooled = {
        "errors": errors,
        "pred": pred[roi].astype(np.uint8),
        "target": target[roi].astype(np.uint8),
        "maps": {name: m[roi].astype(np.float32) for name, m in maps.items()},
        "case_scores": {name: case_score(m, pred) for name, m in maps.items()},
        "bins": bins,
        "bins_whole": bins_whole,
        "n_roi": int(roi.sum()),
    }
    return figures, curves, pooled


def _case_figures(
    prob: np.ndarray,
    pred: np.ndarray,
    target: np.ndarray,
    u_full: np.ndarray,
    roi: np.ndarray,
    errors: np.ndarray,
    eces: tuple[float, float],
    settings: EvalSettings,
) -> dict[str, Any]:
    """Quality, calibration and error-detection figures of one case (``u_full``: the scored map, ``(*S)``;
    ``errors``: the misclassified ROI voxels, ``(N,)``; ``eces``: the ROI and whole-volume ECE)."""
    num_classes = prob.shape[0]
    prob_roi, target_roi = prob[:, roi], target[roi]
    u = u_full[roi].astype(np.float64)
    dice_per_class = metrics.dice_per_class(pred, target, num_classes)
    return {
        "dice_per_class": dice_per_class.tolist(),
        "dice": float(dice_per_class.mean()),
        "case_score": case_score(u_full, pred),
        "ece": eces[0],
        "ece_whole": eces[1],
        "brier": metrics.brier(prob_roi, target_roi),
        "nll": metrics.nll(prob_roi, target_roi),
        "auroc": ranking_metrics.auroc(u, errors),
        "aupr": ranking_metrics.average_precision(u, errors),
        "aurc": ranking_metrics.aurc(u, errors),
        "e_aurc": ranking_metrics.e_aurc(u, errors),
        "ueo": ranking_metrics.ueo(_normalised(u, settings.map_name, num_classes), errors)[0],
        "review_recall": review_recall(u_full, pred != target, roi, settings.review_budget),
        "error_rate": float(errors.mean()) if errors.size else float("nan"),
    }


def _case_curves(
    u: np.ndarray, pred_roi: np.ndarray, target_roi: np.ndarray, errors: np.ndarray, num_classes: int
) -> dict[str, Any]:
    """The risk-coverage curve and Dice after removing the most uncertain ROI voxels (all ``(N,)``)."""
    coverage, risk = ranking_metrics.risk_coverage(u, errors)
    fractions = np.arange(0.0, 1.0, 0.05)
    return {
        "risk_coverage": subsample_curve(coverage, risk),
        "dice_after_removal": {
            "fractions": fractions,
            "dice": ranking_metrics.dice_after_removal(u, pred_roi, target_roi, num_classes, fractions),
        },
    }


def bins_json(bins: dict[str, np.ndarray]) -> dict[str, Any]:
    return clean_json({k: bins[k] for k in ("counts", "mean_confidence", "accuracy")})


def _mean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def aggregate(rows: list[CaseRow], pooled: list[dict[str, Any]], settings: EvalSettings) -> tuple[dict, dict, dict]:
    """Aggregate figures, per-map pooled error detection and the pooled curves of a whole evaluation.

    Returns
    -------
    aggregate : dict
        ``<figure>_mean`` over cases, ``<figure>_pooled`` over voxels, case-level figures, counts.
    by_map : dict
        Map name -> pooled ``auroc``, ``aupr``, ``aurc``, ``e_aurc``, ``case_spearman``.
    curves : dict
        Pooled ``reliability`` bins, ``risk_coverage`` (+ ``risk_coverage_oracle``) and ``dice_after_removal``.
    """
    errors = np.concatenate([p["errors"] for p in pooled])
    u = np.concatenate([p["maps"][settings.map_name] for p in pooled]).astype(np.float64)
    dice = np.array([r.dice for r in rows])
    bins = calibration.merge_reliability_bins([p["bins"] for p in pooled])
    agg = _aggregate_figures(rows, pooled, errors, u, bins, settings)
    by_map = {name: _pooled_detection(pooled, name, errors, dice) for name in pooled[0]["maps"]}
    pred = np.concatenate([p["pred"] for p in pooled])
    target = np.concatenate([p["target"] for p in pooled])
    curves = _pooled_curves(u, errors, pred, target, len(rows[0].dice_per_class) + 1)
    curves = {"reliability": bins_json(bins), **curves}
    agg["dice_after_removal_area"] = float(np.mean(curves["dice_after_removal"]["dice"]))
    return clean_json(agg), clean_json(by_map), curves


def _aggregate_figures(
    rows: list[CaseRow],
    pooled: list[dict[str, Any]],
    errors: np.ndarray,
    u: np.ndarray,
    bins: dict[str, np.ndarray],
    settings: EvalSettings,
) -> dict[str, Any]:
    """Means over cases, figures pooled over all ROI voxels (``errors``, ``u``: ``(N,)``; ``bins``: the merged
    reliability bins) and case-level figures."""
    weights = np.array([p["n_roi"] for p in pooled], dtype=np.float64)
    dice = np.array([r.dice for r in rows])
    scores = np.array([r.case_score for r in rows])
    agg: dict[str, Any] = {"n_cases": len(rows), "n_failures": int(np.sum(dice < settings.failure_dice))}
    agg["dice_mean"] = _mean(dice.tolist())
    agg["dice_std"] = float(np.std(dice)) if len(rows) else float("nan")
    agg["dice_per_class_mean"] = np.mean([r.dice_per_class for r in rows], axis=0).tolist()
    for name in ("ece", "ece_whole", "brier", "nll", "auroc", "aupr", "aurc", "e_aurc", "ueo", "review_recall"):
        agg[f"{name}_mean"] = _mean([getattr(r, name) for r in rows])
    agg["ece_pooled"] = calibration.ece_from_bins(bins)
    agg["ece_whole_pooled"] = calibration.ece_from_bins(
        calibration.merge_reliability_bins([p["bins_whole"] for p in pooled])
    )
    agg["brier_pooled"] = float(np.average([r.brier for r in rows], weights=weights))
    agg["nll_pooled"] = float(np.average([r.nll for r in rows], weights=weights))
    agg["error_rate_pooled"] = float(errors.mean())
    agg["auroc_pooled"] = ranking_metrics.auroc(u, errors)
    agg["aupr_pooled"] = ranking_metrics.average_precision(u, errors)
    agg["aurc_pooled"] = ranking_metrics.aurc(u, errors)
    agg["e_aurc_pooled"] = ranking_metrics.e_aurc(u, errors)
    agg["case_spearman"] = ranking_metrics.spearman(scores, 1.0 - dice)
    agg["case_failure_auroc"] = ranking_metrics.auroc(scores, dice < settings.failure_dice)
    return agg


def _pooled_detection(pooled: list[dict[str, Any]], name: str, errors: np.ndarray, dice: np.ndarray) -> dict:
    """Error detection by map ``name`` over the pooled ROI voxels, and its case scores against ``1 - dice``."""
    um = np.concatenate([p["maps"][name] for p in pooled]).astype(np.float64)
    cs = np.array([p["case_scores"][name] for p in pooled])
    return {
        "auroc": ranking_metrics.auroc(um, errors),
        "aupr": ranking_metrics.average_precision(um, errors),
        "aurc": ranking_metrics.aurc(um, errors),
        "e_aurc": ranking_metrics.e_aurc(um, errors),
        "case_spearman": ranking_metrics.spearman(cs, 1.0 - dice),
    }


def _pooled_curves(
    u: np.ndarray, errors: np.ndarray, pred: np.ndarray, target: np.ndarray, num_classes: int
) -> dict[str, Any]:
    """Pooled risk-coverage (with the oracle's) and Dice-after-removal curves (with the oracle's) over ``(N,)``."""
    fractions = np.arange(0.0, 1.0, 0.05)
    coverage, risk = ranking_metrics.risk_coverage(u, errors)
    curve = subsample_curve(coverage, risk)
    return {
        "risk_coverage": curve,
        "risk_coverage_oracle": {
            "x": curve["x"],
            "y": clean_json(_optimal_risk(np.array(curve["x"]), u.size, int(errors.sum()))),
        },
        "dice_after_removal": {
            "fractions": fractions.tolist(),
            "dice": ranking_metrics.dice_after_removal(u, pred, target, num_classes, fractions).tolist(),
            "oracle": ranking_metrics.dice_after_removal(
                errors.astype(np.float64), pred, target, num_classes, fractions
            ).tolist(),
        },
    }
