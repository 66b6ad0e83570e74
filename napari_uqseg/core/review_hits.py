"""Do the top review regions sit on real errors? Their error rate and error share against random regions.

A region's voxels are the uncertain voxels (``u > ranking.threshold``, inside the ROI) of its bounding box:
what a reader sees highlighted on jumping to it. Two questions, two figures: how often is a voxel the
review sends the reader to really wrong (the error rate, or precision, of the top regions), and what share
of all the errors do those regions hold. The baseline moves each region, shape unchanged, to a random
centre inside the ROI (uniform over its voxels), many times; the oracle is the best any choice of as many
voxels could do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.metrics import dice_per_class
from napari_uqseg.core.review import foreground_roi
from napari_uqseg.core.review_ranking import Region, ReviewRanking


def region_shapes(
    uncertainty: np.ndarray, roi: np.ndarray, threshold: float, regions: Sequence[Region]
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """Per region: its box start and its voxels inside the box (bool), ``u > threshold`` and in the ROI."""
    hot = (np.asarray(uncertainty) > threshold) & roi
    out = []
    for region in regions:
        box = tuple(slice(a, b) for a, b in region.bbox)
        out.append((tuple(a for a, _ in region.bbox), hot[box]))
    return out


def _covered(shape: tuple[int, ...], placed: Sequence[tuple[Sequence[int], np.ndarray]]) -> np.ndarray:
    """Bool ``shape`` array of the shapes placed at their starts (clipped at the array's edges)."""
    covered = np.zeros(shape, dtype=bool)
    for start, voxels in placed:
        lo = [max(int(s), 0) for s in start]
        hi = [min(int(s) + n, size) for s, n, size in zip(start, voxels.shape, shape, strict=True)]
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            continue
        cut = tuple(slice(low - int(s), h - int(s)) for low, h, s in zip(lo, hi, start, strict=True))
        covered[tuple(slice(low, h) for low, h in zip(lo, hi, strict=True))] |= voxels[cut]
    return covered


def _random_placements(
    err: np.ndarray, roi: np.ndarray, shapes: Sequence[tuple[Sequence[int], np.ndarray]], trials: int, seed: int
) -> tuple[list[float], list[float]]:
    """Move every shape to a random centre in the ROI, ``trials`` times; per trial the share of the error
    voxels covered and the error rate (precision) of the covered ROI voxels."""
    rng = np.random.default_rng(seed)
    centres = np.argwhere(roi)
    shares, rates = [], []
    n_err = int(err.sum())
    if not (n_err and len(centres) and shapes):
        return shares, rates
    for _ in range(trials):
        picks = centres[rng.integers(0, len(centres), size=len(shapes))]
        placed = [(c - np.array(v.shape) // 2, v) for c, (_, v) in zip(picks, shapes, strict=True)]
        covered = _covered(err.shape, placed) & roi
        found = int((err & covered).sum())
        shares.append(found / n_err)
        rates.append(found / max(int(covered.sum()), 1))
    return shares, rates


def review_hits(
    errors: np.ndarray,
    uncertainty: np.ndarray,
    ranking: ReviewRanking,
    roi: np.ndarray,
    top: int = 5,
    trials: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Do the ``top`` regions sit on errors? Their error rate and error share against random regions.

    Parameters
    ----------
    errors : np.ndarray
        ``(*S)`` bool, predicted label differs from the reference.
    uncertainty : np.ndarray
        ``(*S)`` the map the ranking was built on.
    ranking : ReviewRanking
        Regions in rank order and the threshold that made them.
    roi : np.ndarray
        ``(*S)`` bool; errors are counted and random regions placed inside it (only its voxels count).
    top, trials, seed : int
        Regions taken, random placements averaged, seed of the placements.

    Returns
    -------
    dict
        Counts: ``errors`` (error voxels in the ROI), ``top_regions``, ``region_voxels`` (voxels the top
        regions cover), ``region_errors`` (error voxels among them), ``roi_voxels``.
        Error rates (precision: wrong voxels / voxels looked at, in ``[0, 1]``): ``precision_top``;
        ``precision_random`` (mean over the random placements, 5th-95th percentile in
        ``precision_random_p5``/``_p95``); ``precision_roi`` (the ROI's error rate: what as many voxels
        drawn at random give on average); ``precision_oracle`` (the best possible with as many voxels:
        ``min(1, errors / region_voxels)``).
        Shares of all error voxels in ``[0, 1]``: ``share_top``, ``share_random`` (mean; ``random_p5``,
        ``random_p95``), ``share_random_voxels`` (``region_voxels / roi_voxels``), ``share_oracle``
        (``min(region_voxels, errors) / errors``). Rates and shares are NaN without errors (rates: or
        without region voxels).
    """
    err = np.asarray(errors, dtype=bool)
    roi = np.asarray(roi, dtype=bool)
    if err.shape != roi.shape or np.shape(uncertainty) != roi.shape:
        raise InputError("errors", f"errors {err.shape}, uncertainty and ROI {roi.shape} must have one shape")
    err = err & roi
    n_err, n_roi = int(err.sum()), int(roi.sum())
    shapes = region_shapes(uncertainty, roi, ranking.threshold, ranking.regions[:top])
    covered = _covered(err.shape, shapes)
    n_cov, found = int(covered.sum()), int((err & covered).sum())
    shares, rates = _random_placements(err, roi, shapes, trials, seed)
    nan = float("nan")

    def ratio(a: float, b: float) -> float:
        return float(a / b) if n_err and b else nan

    def stat(values: list[float], fn) -> float:
        return float(fn(values)) if values else nan

    return {
        "errors": n_err,
        "top_regions": len(shapes),
        "region_voxels": n_cov,
        "region_errors": found,
        "roi_voxels": n_roi,
        "precision_top": ratio(found, n_cov),
        "precision_random": stat(rates, np.mean),
        "precision_random_p5": stat(rates, lambda v: np.percentile(v, 5)),
        "precision_random_p95": stat(rates, lambda v: np.percentile(v, 95)),
        "precision_roi": ratio(n_err, n_roi),
        "precision_oracle": ratio(min(n_err, n_cov), n_cov),
        "share_top": ratio(found, n_err),
        "share_random": stat(shares, np.mean),
        "share_random_voxels": float(n_cov / max(n_roi, 1)),
        "share_oracle": ratio(min(n_err, n_cov), n_err),
        "random_p5": stat(shares, lambda v: np.percentile(v, 5)),
        "random_p95": stat(shares, lambda v: np.percentile(v, 95)),
    }


def error_rate_by_uncertainty(
    errors: np.ndarray, uncertainty: np.ndarray, roi: np.ndarray, most: float = 0.1, least: float = 0.5
) -> dict[str, float]:
    """Error rate of the most and of the least uncertain voxels of the ROI (does the map rank voxels?).

    Parameters
    ----------
    errors, uncertainty, roi : np.ndarray
        ``(*S)`` bool error map, uncertainty map, bool ROI.
    most, least : float
        Shares of the ROI's voxels in ``(0, 1]``: the ``most`` most uncertain and the ``least`` least
        uncertain (ties broken by voxel order).

    Returns
    -------
    dict
        ``most_uncertain`` and ``least_uncertain``: wrong voxels / voxels in each group, in ``[0, 1]``
        (NaN for an empty ROI); ``most``/``least``: the shares used.
    """
    if not (0.0 < most <= 1.0 and 0.0 < least <= 1.0):
        raise InputError("most", f"most and least must be in (0, 1], got {most} and {least}")
    roi = np.asarray(roi, dtype=bool)
    if np.shape(errors) != roi.shape or np.shape(uncertainty) != roi.shape:
        raise InputError("errors", f"errors, uncertainty and ROI {roi.shape} must have one shape")
    wrong, u = np.asarray(errors, dtype=bool)[roi], np.asarray(uncertainty, dtype=np.float64)[roi]
    order = np.argsort(-u, kind="stable")
    n_most, n_least = (max(1, round(f * u.size)) for f in (most, least))
    nan = float("nan")
    return {
        "most": most,
        "least": least,
        "most_uncertain": float(wrong[order[:n_most]].mean()) if u.size else nan,
        "least_uncertain": float(wrong[order[-n_least:]].mean()) if u.size else nan,
    }


def heldout_figures(
    mask: np.ndarray,
    reference: np.ndarray,
    uncertainty: np.ndarray,
    ranking: ReviewRanking,
    labels: dict[str, str],
    voxel_ml: float,
    top: int = 5,
) -> dict[str, Any]:
    """What a held-back scan shows: Dice and volume per class, case score, errors found by the top regions.

    Parameters
    ----------
    mask, reference : np.ndarray
        ``(*S)`` predicted and reference labels.
    uncertainty : np.ndarray
        ``(*S)`` the map ``ranking`` was built on.
    ranking : ReviewRanking
        The prediction's review ranking (``core.review.build_review``).
    labels : dict
        Class index (str) -> name, background included.
    voxel_ml : float
        Volume of one voxel in millilitres.
    top : int
        Regions scored by :func:`review_hits`.
    """
    n = len(labels)
    dice = dice_per_class(mask, reference, n)
    roi = foreground_roi(mask) | (reference != 0)  # the voxels the review ranks, plus any missed tissue
    names = [labels[str(k)] for k in range(1, n)]
    return {
        "dice": {name: round(float(d), 4) for name, d in zip(names, dice, strict=True)},
        "volume_ml": {labels[str(k)]: round(float((mask == k).sum() * voxel_ml), 1) for k in range(1, n)},
        "reference_volume_ml": {
            labels[str(k)]: round(float((reference == k).sum() * voxel_ml), 1) for k in range(1, n)
        },
        "case_score": float(ranking.case_score),
        "review": review_hits(mask != reference, uncertainty, ranking, roi, top=top),
        "by_uncertainty": error_rate_by_uncertainty(mask != reference, uncertainty, roi),
    }
