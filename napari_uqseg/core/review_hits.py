"""Do the top review regions sit on real errors? Error share inside their boxes against random boxes.

A reader who jumps to a region sees its bounding box, so the boxes are what is scored. The baseline
places boxes of the same sizes at random centres inside the region of interest (uniform over its
voxels), many times, and reports the mean share of error voxels they cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.metrics import dice_per_class
from napari_uqseg.core.review_ranking import Region, ReviewRanking


def union_of_boxes(shape: tuple[int, ...], boxes: Sequence[Sequence[tuple[int, int]]]) -> np.ndarray:
    """Bool ``shape`` array, True inside any box (per axis ``(start, stop)``, clipped to the array)."""
    covered = np.zeros(shape, dtype=bool)
    for box in boxes:
        covered[tuple(slice(max(int(a), 0), max(int(b), 0)) for a, b in box)] = True
    return covered


def _random_box(centre: np.ndarray, sizes: Sequence[int], shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """A box of ``sizes`` around ``centre``, shifted to lie inside ``shape``."""
    out = []
    for c, s, n in zip(centre, sizes, shape, strict=True):
        start = int(np.clip(int(c) - s // 2, 0, max(n - s, 0)))
        out.append((start, min(start + s, n)))
    return tuple(out)


def review_hits(
    errors: np.ndarray,
    regions: Sequence[Region],
    roi: np.ndarray,
    top: int = 5,
    trials: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Share of the error voxels inside the boxes of the ``top`` regions, and inside random boxes.

    Parameters
    ----------
    errors : np.ndarray
        ``(*S)`` bool, predicted label differs from the reference.
    regions : sequence of Region
        Ranked regions (rank order), e.g. ``ReviewRanking.regions``.
    roi : np.ndarray
        ``(*S)`` bool; random box centres are drawn from its voxels and errors are counted inside it.
    top, trials, seed : int
        Regions taken, random placements averaged, seed of the placements.

    Returns
    -------
    dict
        ``errors`` (error voxels in the ROI), ``top_regions`` (regions used), ``box_voxels`` (voxels the top
        boxes cover), ``share_top`` and ``share_random`` (mean over trials; 5th-95th percentile in
        ``random_p5``/``random_p95``): shares of the error voxels, in ``[0, 1]``; NaN without errors.
    """
    err = np.asarray(errors, dtype=bool)
    roi = np.asarray(roi, dtype=bool)
    if err.shape != roi.shape:
        raise InputError("errors", f"shape {err.shape} does not match the ROI {roi.shape}")
    err = err & roi
    n_err = int(err.sum())
    chosen = list(regions)[:top]
    boxes = [r.bbox for r in chosen]
    covered = union_of_boxes(err.shape, boxes)
    share_top = float((err & covered).sum() / n_err) if n_err else float("nan")
    rng = np.random.default_rng(seed)
    centres = np.argwhere(roi)
    shares = []
    if n_err and len(centres) and boxes:
        for _ in range(trials):
            picks = centres[rng.integers(0, len(centres), size=len(boxes))]
            placed = [_random_box(c, [b - a for a, b in box], err.shape) for c, box in zip(picks, boxes, strict=True)]
            shares.append((err & union_of_boxes(err.shape, placed)).sum() / n_err)
    nan = float("nan")
    return {
        "errors": n_err,
        "top_regions": len(chosen),
        "box_voxels": int(covered.sum()),
        "share_top": share_top,
        "share_random": float(np.mean(shares)) if shares else nan,
        "random_p5": float(np.percentile(shares, 5)) if shares else nan,
        "random_p95": float(np.percentile(shares, 95)) if shares else nan,
    }


def heldout_figures(
    mask: np.ndarray,
    reference: np.ndarray,
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
    roi = (mask != 0) | (reference != 0)
    names = [labels[str(k)] for k in range(1, n)]
    return {
        "dice": {name: round(float(d), 4) for name, d in zip(names, dice, strict=True)},
        "volume_ml": {labels[str(k)]: round(float((mask == k).sum() * voxel_ml), 1) for k in range(1, n)},
        "reference_volume_ml": {
            labels[str(k)]: round(float((reference == k).sum() * voxel_ml), 1) for k in range(1, n)
        },
        "case_score": float(ranking.case_score),
        "review": review_hits(mask != reference, ranking.regions, roi, top=top),
    }
