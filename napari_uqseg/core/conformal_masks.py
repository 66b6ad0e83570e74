"""Outer and inner masks with a controlled miss rate, by conformal risk control on held-out cases (numpy).

For class ``c`` with mean probability ``p_c``:

- the **outer** mask ``{p_c >= t_out}`` grows as ``t_out`` falls; its loss on a case is the share of the
  true structure's voxels it misses (false-negative rate, 0 for an absent structure);
- the **inner** mask ``{p_c >= t_in}`` shrinks as ``t_in`` rises; its loss is the volume it wrongly
  includes, as a share of the true structure's volume (capped at 1, so it stays bounded and monotone).

``core.conformal.risk_control_index`` picks each threshold on calibration cases, so that on a new case
drawn like them the expected loss is at most the chosen risk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_uqseg.core.conformal import check_alpha, risk_control_index
from napari_uqseg.core.errors import InputError

#: candidate thresholds, ascending: fine near 0 and 1 where outer and inner masks end up
THRESHOLDS = np.unique(np.concatenate([np.linspace(0, 1, 1001), np.logspace(-5, 0, 501), 1 - np.logspace(-5, 0, 501)]))
THRESHOLDS = THRESHOLDS[(THRESHOLDS > 0) & (THRESHOLDS <= 1)]


def outer_miss_curve(prob: np.ndarray, truth: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Share of the true structure missed by ``{prob >= t}`` for each threshold ``t`` (ascending).

    Parameters
    ----------
    prob : np.ndarray
        ``(*S)`` probabilities of one class.
    truth : np.ndarray
        ``(*S)`` bool, the true structure.

    Returns
    -------
    np.ndarray
        ``(T,)`` false-negative rates in [0, 1]; zeros when the structure is absent.
    """
    inside = np.sort(np.asarray(prob, dtype=np.float64)[np.asarray(truth, bool)])
    if inside.size == 0:
        return np.zeros(len(thresholds))
    return np.searchsorted(inside, thresholds, side="left") / inside.size


def inner_excess_curve(prob: np.ndarray, truth: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Volume of ``{prob >= t}`` outside the truth, over the truth's volume (capped at 1), per threshold.

    Returns
    -------
    np.ndarray
        ``(T,)`` in [0, 1]; non-increasing as ``t`` rises. An absent structure counts any inclusion as 1.
    """
    truth = np.asarray(truth, bool)
    outside = np.sort(np.asarray(prob, dtype=np.float64)[~truth])
    included = outside.size - np.searchsorted(outside, thresholds, side="left")
    return np.minimum(1.0, included / max(int(truth.sum()), 1)) if truth.any() else (included > 0).astype(float)


def fit_mask_thresholds(
    outer_curves: np.ndarray, inner_curves: np.ndarray, risk: float, thresholds: np.ndarray = THRESHOLDS
) -> dict[str, float | None]:
    """Outer and inner thresholds of one class from calibration cases' curves ``(n, T)``.

    Returns
    -------
    dict
        ``{"outer": t_out, "inner": t_in}`` with ``t_in >= t_out`` (the inner mask inside the outer one); a
        threshold is ``None`` when the cases are too few for ``risk``.
    """
    risk = check_alpha(risk, "risk")
    outer = risk_control_index(np.asarray(outer_curves)[:, ::-1], risk)  # grows as t falls
    inner = risk_control_index(np.asarray(inner_curves), risk)  # shrinks as t rises
    t_out = None if outer is None else float(thresholds[::-1][outer])
    t_in = None if inner is None else float(thresholds[inner])
    if t_out is not None and t_in is not None and t_in < t_out:
        t_in = t_out  # the inner mask nests in the outer; shrinking it only lowers its loss: the guarantee holds
    return {"outer": t_out, "inner": t_in}


def conformal_masks(
    probabilities: np.ndarray, calibration: dict[str, Any], tolerance: float = 0.0
) -> dict[str, dict[str, np.ndarray]]:
    """Outer and inner masks per calibrated class.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(C, *S)`` mean class probabilities.
    calibration : dict
        ``{"risk": a, "classes": {"1": {"outer": t, "inner": t}, ...}}``.
    tolerance : float
        Rounding of stored probabilities (e.g. ``0.5 / 255``): the outer mask is widened and the inner
        one narrowed by it, so rounding never weakens the guarantee.

    Returns
    -------
    dict
        Class (str) -> ``{"outer": bool (*S), "inner": bool (*S)}`` (a side is absent if uncalibrated).
    """
    probabilities = np.asarray(probabilities)
    masks: dict[str, dict[str, np.ndarray]] = {}
    for c, entry in calibration.get("classes", {}).items():
        if int(c) >= probabilities.shape[0]:
            raise InputError("calibration", f"class {c} is beyond the prediction's {probabilities.shape[0]} classes")
        prob = probabilities[int(c)]
        masks[c] = {}
        if entry.get("outer") is not None:
            masks[c]["outer"] = prob >= entry["outer"] - tolerance
        if entry.get("inner") is not None:
            masks[c]["inner"] = prob >= entry["inner"] + tolerance
    return masks


def risk_text(risk: float) -> str:
    """The guarantee in plain words."""
    pct = f"{risk * 100:g} %"
    return (
        f"Outer contour: on average it misses at most {pct} of the structure. "
        f"Inner contour: on average it wrongly includes at most {pct} of the structure's volume. "
        "(Calibrated on held-out cases; holds for cases like them, not for unusual scans.)"
    )
