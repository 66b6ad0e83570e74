"""Uncertainty as an error detector: AUROC, AP, risk-coverage, UEO, Dice after removal (numpy/scipy).

Inputs are flat per-voxel arrays restricted to the evaluation ROI by the caller. Tied scores are
never split by an arbitrary sort order: AUROC uses average ranks, AP and risk-coverage evaluate at
the end of each group of equal scores; only :func:`dice_after_removal` breaks ties, by voxel index,
because it must keep an exact voxel count.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.metrics import confusion_matrix, dice_from_confusion

#: UEO thresholds of Jungo & Reyes (2019)
UEO_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _pair(scores: np.ndarray, flags: np.ndarray, score_name: str, flag_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Flatten a finite float score array and a bool array of the same size."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    f = np.asarray(flags).ravel().astype(bool)
    if s.shape != f.shape:
        raise InputError(flag_name, f"has {f.size} values but {score_name} has {s.size}")
    if not np.all(np.isfinite(s)):
        raise InputError(score_name, "must be finite (no NaN or inf)")
    return s, f


def _group_ends(sorted_values: np.ndarray) -> np.ndarray:
    """Indices of the last element of each run of equal values in a sorted array."""
    return np.append(np.flatnonzero(np.diff(sorted_values) != 0), sorted_values.size - 1)


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney statistic, ties counted as 1/2.

    Parameters
    ----------
    scores : np.ndarray
        ``(N,)`` scores, higher = more likely positive (e.g. uncertainty).
    positives : np.ndarray
        ``(N,)`` bool (e.g. voxel is misclassified).

    Returns
    -------
    float
        ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with average ranks; NaN when either
        class is absent.
    """
    s, pos = _pair(scores, positives, "scores", "positives")
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = float(stats.rankdata(s)[pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (float(n_pos) * float(n_neg))


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Average precision ``Σ_t (R_t - R_{t-1}) P_t`` over decreasing distinct score thresholds.

    Parameters
    ----------
    scores : np.ndarray
        ``(N,)`` scores, higher = more likely positive.
    positives : np.ndarray
        ``(N,)`` bool.

    Returns
    -------
    float
        AP in ``[0, 1]``; equal scores enter together (one threshold per distinct score).
        NaN without positives. Chance level is the positive rate.
    """
    s, pos = _pair(scores, positives, "scores", "positives")
    n_pos = int(pos.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    ends = _group_ends(-s[order])
    tp = np.cumsum(pos[order])[ends].astype(np.float64)
    precision = tp / (ends + 1)
    recall_step = np.diff(tp, prepend=0.0) / n_pos
    return float(np.sum(recall_step * precision))


def risk_coverage(uncertainty: np.ndarray, errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Selective-prediction curve: keep the most certain voxels first.

    Parameters
    ----------
    uncertainty : np.ndarray
        ``(N,)`` uncertainty, lower = kept earlier.
    errors : np.ndarray
        ``(N,)`` bool, voxel misclassified.

    Returns
    -------
    coverage : np.ndarray
        ``(G,)`` ``k/N`` at the end of each of the ``G`` groups of equal uncertainty (ascending).
    risk : np.ndarray
        ``(G,)`` error rate among the ``k`` kept voxels. Empty arrays for ``N = 0``.
    """
    u, err = _pair(uncertainty, errors, "uncertainty", "errors")
    if u.size == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(u, kind="stable")
    ends = _group_ends(u[order])
    kept = (ends + 1).astype(np.float64)
    return kept / u.size, np.cumsum(err[order])[ends] / kept


def aurc(uncertainty: np.ndarray, errors: np.ndarray) -> float:
    """Area under the risk-coverage curve, ``(1/N) Σ_k r_k`` (Geifman & El-Yaniv 2017).

    Within a group of tied uncertainties every ``k`` takes the risk at the group end, so the area is
    the step integral ``Σ_g Δcoverage_g · risk_g`` of :func:`risk_coverage`; without ties this is
    exactly ``(1/N) Σ_k r_k``. NaN for ``N = 0``.
    """
    coverage, risk = risk_coverage(uncertainty, errors)
    if coverage.size == 0:
        return float("nan")
    return float(np.sum(np.diff(coverage, prepend=0.0) * risk))


def optimal_aurc(n: int, n_errors: int) -> float:
    """AURC of a perfect ranking (all errors last): ``(1/N) Σ_k max(0, k - (N - N_e)) / k``."""
    if n <= 0:
        return float("nan")
    k = np.arange(n - n_errors + 1, n + 1, dtype=np.float64)
    return float(np.sum((k - (n - n_errors)) / k) / n)


def e_aurc(uncertainty: np.ndarray, errors: np.ndarray) -> float:
    """Excess AURC, :func:`aurc` minus :func:`optimal_aurc` for the same error count (>= 0)."""
    err = np.asarray(errors).ravel().astype(bool)
    return aurc(uncertainty, err) - optimal_aurc(err.size, int(err.sum()))


def ueo(
    uncertainty_normalised: np.ndarray,
    errors: np.ndarray,
    thresholds: tuple[float, ...] | np.ndarray = UEO_THRESHOLDS,
) -> tuple[float, np.ndarray]:
    """Uncertainty-error overlap (Jungo & Reyes 2019): Dice of ``{u > τ}`` with the error map.

    Parameters
    ----------
    uncertainty_normalised : np.ndarray
        ``(N,)`` uncertainty scaled to ``[0, 1]`` (e.g. entropy / log C).
    errors : np.ndarray
        ``(N,)`` bool, voxel misclassified.
    thresholds : sequence of float
        The ``τ`` values.

    Returns
    -------
    best : float
        ``max_τ UEO_τ``.
    per_threshold : np.ndarray
        ``(T,)`` ``2|U_τ ∩ E| / (|U_τ| + |E|)``, 1.0 where both sets are empty.
    """
    u, err = _pair(uncertainty_normalised, errors, "uncertainty_normalised", "errors")
    taus = np.asarray(thresholds, dtype=np.float64).ravel()
    if taus.size == 0:
        raise InputError("thresholds", "needs at least one threshold")
    n_err = int(err.sum())
    values = np.empty(taus.size)
    for i, tau in enumerate(taus):
        hot = u > tau
        denom = int(hot.sum()) + n_err
        values[i] = 1.0 if denom == 0 else 2.0 * int((hot & err).sum()) / denom
    return float(values.max()), values


def dice_after_removal(
    uncertainty: np.ndarray,
    pred: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    fractions: np.ndarray | tuple[float, ...] | None = None,
    skip_absent: bool = True,
) -> np.ndarray:
    """Mean foreground Dice on the voxels left after removing the most uncertain fraction (DUDES curve).

    Parameters
    ----------
    uncertainty : np.ndarray
        ``(N,)`` (or any shape) uncertainty per voxel.
    pred, target : np.ndarray
        Label maps of the same size as ``uncertainty``.
    num_classes : int
        ``C`` including background.
    fractions : array-like, optional
        Removed fractions ``x`` in ``[0, 1)``; default ``0, 0.05, ..., 0.95``.
    skip_absent : bool
        Average only over foreground classes present (in prediction or target) among the kept voxels,
        as DUDES's mIoU does, so the curve does not jump to 1 when a class is removed entirely. If no
        class is present the value is 1.0. With ``False``, absent classes score 1.0 (:func:`dice_per_class`).

    Returns
    -------
    np.ndarray
        ``(len(fractions),)`` float64. Exactly ``ceil((1 - x) N)`` voxels are kept (up to float round-off
        in ``(1 - x) N``): the least uncertain, ties broken by voxel index (lower index kept first).
    """
    u = np.asarray(uncertainty, dtype=np.float64).ravel()
    p = np.asarray(pred).ravel()
    t = np.asarray(target).ravel()
    if not (u.size == p.size == t.size):
        raise InputError("pred", f"uncertainty, pred and target sizes differ: {u.size}, {p.size}, {t.size}")
    if not np.all(np.isfinite(u)):
        raise InputError("uncertainty", "must be finite (no NaN or inf)")
    xs = np.arange(0.0, 1.0, 0.05) if fractions is None else np.asarray(fractions, dtype=np.float64).ravel()
    if xs.size and (xs.min() < 0.0 or xs.max() >= 1.0):
        raise InputError("fractions", "removed fractions must lie in [0, 1)")
    order = np.argsort(u, kind="stable")  # stable: equal uncertainty keeps index order
    p, t = p[order], t[order]
    out = np.empty(xs.size)
    for i, x in enumerate(xs):
        n_keep = int(np.ceil((1.0 - x) * u.size - 1e-6))  # 0.95 * 100 is 95.00000000000001 in floats
        conf = confusion_matrix(p[:n_keep], t[:n_keep], num_classes)
        dice = dice_from_confusion(conf)
        if skip_absent:
            present = (conf.sum(axis=0)[1:] + conf.sum(axis=1)[1:]) > 0
            out[i] = float(dice[present].mean()) if present.any() else 1.0
        else:
            out[i] = float(dice.mean())
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation over pairs where both values are finite; NaN if fewer than 2 or constant."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InputError("y", f"has {b.size} values but x has {a.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(a, b).statistic)
