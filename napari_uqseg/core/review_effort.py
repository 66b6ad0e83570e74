"""What a reader finds and fixes for a given effort: region orders, errors found, simulated corrections.

A reader reviews whole regions in some order. The orders compared: ``uncertainty`` (the queue's own regions,
``core.review.region_label_image``, in its ranking) against readers who do not use the uncertainty: the whole
ROI cut into pieces of the same size bound (:func:`roi_pieces`), taken in ``random`` order or in ``oracle``
order (pieces sorted by their true error voxels, the best a reader of such pieces can do). Effort is counted in
regions or in reviewed voxels; a simulated reader replaces the prediction by the ground truth inside the
regions reviewed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.region_split import split_large_components

ORDERS = ("uncertainty", "random", "oracle")


def roi_pieces(roi: np.ndarray, max_voxels: int) -> np.ndarray:
    """The ROI cut into connected pieces of at most ``max_voxels``: ``(*S)`` int, pieces ``1..n``, 0 outside."""
    labels, n = ndimage.label(np.asarray(roi, bool), structure=np.ones((3,) * np.ndim(roi), dtype=bool))
    labels, _ = split_large_components(labels, n, max_voxels)
    return labels


def region_order(regions: np.ndarray, errors: np.ndarray, order: str, seed: int = 0) -> np.ndarray:
    """Region ids ``1..n`` of a region label image in review order.

    Parameters
    ----------
    regions : np.ndarray
        ``(*S)`` int, region ``k`` has value k (1 = first in the queue), 0 elsewhere.
    errors : np.ndarray
        ``(*S)`` bool, the prediction is wrong there (used by ``"oracle"`` only).
    order : str
        One of :data:`ORDERS`.
    seed : int
        Seed of the ``"random"`` order.

    Returns
    -------
    np.ndarray
        ``(n,)`` int ids.
    """
    n = int(regions.max()) if regions.size else 0
    ids = np.arange(1, n + 1)
    if order == "uncertainty":
        return ids
    if order == "random":
        return np.random.default_rng(seed).permutation(ids)
    if order == "oracle":
        found = np.bincount(regions.ravel(), weights=np.asarray(errors, bool).ravel(), minlength=n + 1)[1:]
        return ids[np.lexsort((ids, -found))]
    raise InputError("order", f"unknown review order {order!r}; choose one of {', '.join(ORDERS)}")


def effort_curve(regions: np.ndarray, errors: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative ``(reviewed voxels, error voxels found)`` after each region of ``order``, both ``(n,)``."""
    n = int(regions.max()) if regions.size else 0
    sizes = np.bincount(regions.ravel(), minlength=n + 1)
    found = np.bincount(regions.ravel(), weights=np.asarray(errors, bool).ravel(), minlength=n + 1)
    return np.cumsum(sizes[order]), np.cumsum(found[order])


def errors_in_first(regions: np.ndarray, errors: np.ndarray, order: np.ndarray, count: int) -> int:
    """Error voxels inside the first ``count`` regions of ``order``."""
    chosen = np.isin(regions, order[:count])
    return int(np.count_nonzero(chosen & np.asarray(errors, bool)))


def regions_within_budget(regions: np.ndarray, order: np.ndarray, budget_voxels: float) -> np.ndarray:
    """The leading regions of ``order`` whose voxels together fit in ``budget_voxels`` (skipping none)."""
    sizes, _ = effort_curve(regions, np.zeros(regions.shape, bool), order)
    return order[: int(np.searchsorted(sizes, budget_voxels, side="right"))]


def corrected_label(prediction: np.ndarray, truth: np.ndarray, regions: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """The reader's correction: ``truth`` inside the chosen regions, the prediction everywhere else."""
    if np.shape(prediction) != np.shape(truth) or np.shape(truth) != np.shape(regions):
        raise InputError("correction", "prediction, truth and regions must have one shape")
    inside = np.isin(regions, chosen)
    return np.where(inside, truth, prediction).astype(np.asarray(prediction).dtype)
