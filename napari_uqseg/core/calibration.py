"""Top-label calibration: reliability bins and the expected calibration error (numpy).

Bins are equal-width on ``[0, 1]`` and right-closed, ``B_k = ((k-1)/K, k/K]`` for ``k = 1..K``;
a confidence of exactly 0 joins the first bin (Naeini et al. 2015, Guo et al. 2017).
"""

from __future__ import annotations

import numpy as np

from napari_uqseg.core.errors import InputError


def top_label(prob: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidence and correctness.

    Parameters
    ----------
    prob : np.ndarray
        ``(C, N)`` (or ``(C, *S)``) class probabilities.
    labels : np.ndarray
        ``(N,)`` (or ``(*S)``) true classes.

    Returns
    -------
    confidence : np.ndarray
        ``(N,)`` float64, ``max_c p_c``.
    correct : np.ndarray
        ``(N,)`` bool, ``argmax_c p_c == label`` (ties go to the lowest class, as ``np.argmax``).
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim < 1 or prob.shape[1:] != np.shape(labels):
        raise InputError("prob", f"shape {prob.shape} must be (C, *S) with labels of shape (*S) = {np.shape(labels)}")
    flat = prob.reshape(prob.shape[0], -1)
    return flat.max(axis=0), np.argmax(flat, axis=0) == np.asarray(labels).ravel()


def _check(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    ok = np.asarray(correct, dtype=np.float64).ravel()
    if conf.shape != ok.shape:
        raise InputError("correct", f"has {ok.size} values but confidence has {conf.size}")
    if n_bins < 1:
        raise InputError("n_bins", f"must be >= 1, got {n_bins}")
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0):
        raise InputError("confidence", "must be finite and within [0, 1]")
    return conf, ok


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 100) -> dict[str, np.ndarray]:
    """Per-bin counts, mean confidence and accuracy for a reliability diagram.

    Parameters
    ----------
    confidence : np.ndarray
        ``(N,)`` top-label confidence in ``[0, 1]``.
    correct : np.ndarray
        ``(N,)`` bool, whether the top label is right.
    n_bins : int
        Number ``K`` of equal-width bins.

    Returns
    -------
    dict
        ``bin_edges`` ``(K+1,)``; ``counts`` ``(K,)`` int64; ``mean_confidence`` and ``accuracy``
        ``(K,)`` float64, NaN in empty bins.
    """
    conf, ok = _check(confidence, correct, n_bins)
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins  # k/K rounds exactly like the literal (0.3 == 3/10)
    # searchsorted(left) puts conf == edge k into bin k-1, i.e. right-closed bins; 0 -> -1 -> first bin
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / counts
        accuracy = np.bincount(index, weights=ok, minlength=n_bins) / counts
    return {
        "bin_edges": edges,
        "counts": counts.astype(np.int64),
        "mean_confidence": np.where(counts > 0, mean_conf, np.nan),
        "accuracy": np.where(counts > 0, accuracy, np.nan),
    }


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 100) -> float:
    """Top-label ECE ``Σ_k (|B_k|/N) |acc(B_k) - conf(B_k)|`` over non-empty bins.

    Parameters
    ----------
    confidence : np.ndarray
        ``(N,)`` top-label confidence in ``[0, 1]``.
    correct : np.ndarray
        ``(N,)`` bool.
    n_bins : int
        Number ``K`` of equal-width bins (100 in the evaluation protocol).

    Returns
    -------
    float
        ECE as a fraction in ``[0, 1]``; NaN for zero voxels.
    """
    return ece_from_bins(reliability_bins(confidence, correct, n_bins))


def ece_from_bins(bins: dict[str, np.ndarray]) -> float:
    """ECE of :func:`reliability_bins` output (or of :func:`merge_reliability_bins`); NaN when all bins are empty."""
    total = bins["counts"].sum()
    if total == 0:
        return float("nan")
    filled = bins["counts"] > 0
    gap = np.abs(bins["accuracy"][filled] - bins["mean_confidence"][filled])
    return float(np.sum(bins["counts"][filled] / total * gap))


def merge_reliability_bins(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pool the reliability bins of several cases (same edges) as if their voxels had been binned together.

    Lets an evaluation compute the pooled ECE over millions of voxels while keeping only ``K`` numbers per case.
    """
    if not parts:
        raise InputError("parts", "needs at least one set of bins")
    edges = parts[0]["bin_edges"]
    if any(p["bin_edges"].shape != edges.shape for p in parts):
        raise InputError("parts", "bins of different sizes cannot be merged")
    counts = np.sum([p["counts"] for p in parts], axis=0)
    conf_sum = np.sum([np.nan_to_num(p["mean_confidence"]) * p["counts"] for p in parts], axis=0)
    acc_sum = np.sum([np.nan_to_num(p["accuracy"]) * p["counts"] for p in parts], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "bin_edges": edges,
            "counts": counts.astype(np.int64),
            "mean_confidence": np.where(counts > 0, conf_sum / counts, np.nan),
            "accuracy": np.where(counts > 0, acc_sum / counts, np.nan),
        }
