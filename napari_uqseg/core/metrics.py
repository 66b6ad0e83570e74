"""Segmentation overlap, evaluation regions and proper scoring rules (numpy).

Conventions (research notes, section 4): class 0 is background; Dice is reported for the
foreground classes ``1..C-1``; probabilities are ``(C, N)`` (or ``(C, *S)``) with labels ``(N,)``
(or ``(*S)``); natural logs.
"""

from __future__ import annotations

import numpy as np

from napari_uqseg.core.errors import InputError

EPS = 1e-12

#: ROI kinds accepted by :func:`roi_mask`
ROI_KINDS = ("gt_bbox", "union_bbox", "whole")


def _labels(array: np.ndarray, name: str, num_classes: int) -> np.ndarray:
    """Flatten a label map to int64 and check its values lie in ``[0, num_classes)``."""
    flat = np.asarray(array).ravel()
    if flat.size and not np.issubdtype(flat.dtype, np.integer) and not np.all(np.mod(flat, 1) == 0):
        raise InputError(name, "labels must be integers")
    flat = flat.astype(np.int64, copy=False)
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        raise InputError(name, f"labels must lie in [0, {num_classes}), got [{flat.min()}, {flat.max()}]")
    return flat


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion counts ``(C, C)``, rows = target class, columns = predicted class.

    Parameters
    ----------
    pred, target : np.ndarray
        Integer label maps of the same shape, values in ``[0, num_classes)``.
    num_classes : int
        Number of classes ``C`` including background.
    """
    if num_classes < 2:
        raise InputError("num_classes", f"needs at least 2 classes (background + 1), got {num_classes}")
    if np.shape(pred) != np.shape(target):
        raise InputError("pred", f"shape {np.shape(pred)} does not match target shape {np.shape(target)}")
    p = _labels(pred, "pred", num_classes)
    t = _labels(target, "target", num_classes)
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def dice_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Foreground Dice ``(C-1,)`` from a ``(C, C)`` confusion matrix; 1.0 where a class is absent from both."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)[1:]
    denom = confusion.sum(axis=0)[1:] + confusion.sum(axis=1)[1:]  # |pred == c| + |target == c|
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = 2.0 * tp / denom
    return np.where(denom > 0, dice, 1.0)


def dice_per_class(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Dice of each foreground class ``1..C-1``.

    Parameters
    ----------
    pred, target : np.ndarray
        Integer label maps of the same shape ``(*S)``, values in ``[0, num_classes)``.
    num_classes : int
        Number of classes ``C`` including background (0).

    Returns
    -------
    np.ndarray
        ``(C-1,)`` float64, ``2|P∩T| / (|P| + |T|)`` per class. A class absent from both the
        prediction and the target scores 1.0 (nothing to find, nothing wrongly found).
    """
    return dice_from_confusion(confusion_matrix(pred, target, num_classes))


def mean_dice(pred: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    """Mean of :func:`dice_per_class` over the foreground classes (same empty-class rule)."""
    return float(dice_per_class(pred, target, num_classes).mean())


def foreground_bbox(target: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """Inclusive bounding box of ``target != 0``, grown by ``margin`` voxels and clipped to the array.

    Parameters
    ----------
    target : np.ndarray
        Label map ``(*S)``.
    margin : int
        Voxels added on every side (>= 0).

    Returns
    -------
    tuple of slice or None
        One ``slice(start, stop)`` per axis (``stop`` exclusive, as numpy indexing wants),
        or ``None`` when there is no foreground.
    """
    if margin < 0:
        raise InputError("margin", f"must be >= 0, got {margin}")
    foreground = np.asarray(target) != 0
    box = []
    for axis in range(foreground.ndim):
        other = tuple(a for a in range(foreground.ndim) if a != axis)
        hit = np.flatnonzero(np.any(foreground, axis=other) if other else foreground)
        if hit.size == 0:
            return None
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + 1 + margin, foreground.shape[axis])))
    return tuple(box)


def _box_mask(shape: tuple[int, ...], box: tuple[slice, ...]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[box] = True
    return mask


def roi_mask(target: np.ndarray, kind: str = "gt_bbox", pred: np.ndarray | None = None, margin: int = 0) -> np.ndarray:
    """Boolean evaluation region of the same shape as ``target``.

    Parameters
    ----------
    target : np.ndarray
        Ground-truth label map ``(*S)``.
    kind : {"gt_bbox", "union_bbox", "whole"}
        ``"gt_bbox"``: bounding box of the ground-truth foreground (the default of docs/evaluation.md);
        ``"union_bbox"``: bounding box of the ground-truth or predicted foreground (also sees false
        positives outside the GT box); ``"whole"``: every voxel.
    pred : np.ndarray, optional
        Predicted label map ``(*S)``; required for ``"union_bbox"``, used by the fallback.
    margin : int
        Voxels added around the box.

    Returns
    -------
    np.ndarray
        ``(*S)`` bool. Fallback for an empty ground truth under ``"gt_bbox"``: the union box
        (i.e. the predicted-foreground box, so false positives are still scored), and when the
        prediction is empty or not given too, the whole volume, so every case has a ROI.
    """
    target = np.asarray(target)
    if kind not in ROI_KINDS:
        raise InputError("kind", f"unknown ROI kind {kind!r}; choose one of {', '.join(ROI_KINDS)}")
    if pred is not None and np.shape(pred) != target.shape:
        raise InputError("pred", f"shape {np.shape(pred)} does not match target shape {target.shape}")
    if kind == "union_bbox" and pred is None:
        raise InputError("pred", "the 'union_bbox' ROI needs the prediction")
    if kind == "gt_bbox":
        box = foreground_bbox(target, margin)
        if box is not None:
            return _box_mask(target.shape, box)
    if kind in ("gt_bbox", "union_bbox") and pred is not None:
        box = foreground_bbox((target != 0) | (np.asarray(pred) != 0), margin)
        if box is not None:
            return _box_mask(target.shape, box)
    return np.ones(target.shape, dtype=bool)


def _prob_and_labels(prob: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C, *S)`` probabilities and ``(*S)`` labels -> ``(C, N)`` float64 and ``(N,)`` int64."""
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim < 1 or prob.shape[1:] != np.shape(labels):
        raise InputError("prob", f"shape {prob.shape} must be (C, *S) with labels of shape (*S) = {np.shape(labels)}")
    return prob.reshape(prob.shape[0], -1), _labels(labels, "labels", prob.shape[0])


def brier(prob: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: squared error summed over classes, averaged over voxels.

    Parameters
    ----------
    prob : np.ndarray
        ``(C, N)`` (or ``(C, *S)``) class probabilities.
    labels : np.ndarray
        ``(N,)`` (or ``(*S)``) true classes.

    Returns
    -------
    float
        ``(1/N) Σ_i Σ_c (p_ic - 1[y_i = c])²``, range ``[0, 2]`` (not divided by C);
        NaN for zero voxels.
    """
    p, y = _prob_and_labels(prob, labels)
    if y.size == 0:
        return float("nan")
    p_true = p[y, np.arange(y.size)]
    return float(np.mean((p**2).sum(axis=0) - 2.0 * p_true + 1.0))  # expands Σ_c (p_c - onehot_c)²


def nll(prob: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood ``-(1/N) Σ_i log max(p_{i, y_i}, 1e-12)``; NaN for zero voxels.

    Parameters
    ----------
    prob : np.ndarray
        ``(C, N)`` (or ``(C, *S)``) class probabilities (for ensembles: the mean probability).
    labels : np.ndarray
        ``(N,)`` (or ``(*S)``) true classes.
    """
    p, y = _prob_and_labels(prob, labels)
    if y.size == 0:
        return float("nan")
    return float(-np.mean(np.log(np.clip(p[y, np.arange(y.size)], EPS, None))))
