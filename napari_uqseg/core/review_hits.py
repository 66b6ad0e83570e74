"""Do the top review regions sit on real errors? Error share inside them against random regions.

A region's voxels are the uncertain voxels (``u > ranking.threshold``, inside the ROI) of its bounding box:
what a reader sees highlighted on jumping to it. The baseline moves each region, shape unchanged, to a
random centre inside the ROI (uniform over its voxels), many times, and reports the mean share of the
error voxels those random regions cover.
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


def review_hits(
    errors: np.ndarray,
    uncertainty: np.ndarray,
    ranking: ReviewRanking,
    roi: np.ndarray,
    top: int = 5,
    trials: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Share of the error voxels inside the ``top`` regions, and inside random regions of the same shapes.

    Parameters
    ----------
    errors : np.ndarray
        ``(*S)`` bool, predicted label differs from the reference.
    uncertainty : np.ndarray
        ``(*S)`` the map the ranking was built on.
    ranking : ReviewRanking
        Regions in rank order and the threshold that made them.
    roi : np.ndarray
        ``(*S)`` bool; errors are counted and random regions placed inside it.
    top, trials, seed : int
        Regions taken, random placements averaged, seed of the placements.

    Returns
    -------
    dict
        ``errors`` (error voxels in the ROI), ``top_regions``, ``region_voxels`` (voxels the top regions
        cover) and ``roi_voxels``; ``share_top`` and ``share_random`` (mean over trials; 5th-95th percentile
        in ``random_p5``/``random_p95``): shares of the error voxels in ``[0, 1]``, NaN without errors;
        ``share_random_voxels``: the expected share for as many voxels drawn at random from the ROI
        (``region_voxels / roi_voxels``).
    """
    err = np.asarray(errors, dtype=bool)
    roi = np.asarray(roi, dtype=bool)
    if err.shape != roi.shape or np.shape(uncertainty) != roi.shape:
        raise InputError("errors", f"errors {err.shape}, uncertainty and ROI {roi.shape} must have one shape")
    err = err & roi
    n_err = int(err.sum())
    shapes = region_shapes(uncertainty, roi, ranking.threshold, ranking.regions[:top])
    covered = _covered(err.shape, shapes)
    rng = np.random.default_rng(seed)
    centres = np.argwhere(roi)
    shares = []
    if n_err and len(centres) and shapes:
        for _ in range(trials):
            picks = centres[rng.integers(0, len(centres), size=len(shapes))]
            placed = [(c - np.array(v.shape) // 2, v) for c, (_, v) in zip(picks, shapes, strict=True)]
            shares.append((err & _covered(err.shape, placed)).sum() / n_err)
    nan = float("nan")
    return {
        "errors": n_err,
        "top_regions": len(shapes),
        "region_voxels": int(covered.sum()),
        "roi_voxels": int(roi.sum()),
        "share_top": float((err & covered).sum() / n_err) if n_err else nan,
        "share_random": float(np.mean(shares)) if shares else nan,
        "share_random_voxels": float(covered.sum() / max(int(roi.sum()), 1)),
        "random_p5": float(np.percentile(shares, 5)) if shares else nan,
        "random_p95": float(np.percentile(shares, 95)) if shares else nan,
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
    }
