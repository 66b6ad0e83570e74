"""The review queue: rank a case, its slices and its uncertain regions so a reader checks the worst first.

Everything is computed inside a region of interest (ROI): the predicted foreground dilated by a few
voxels, where the uncertainty that matters for editing a segmentation lives. Regions are connected
components of high uncertainty, split so that none holds more than ``max_region_voxels`` voxels
(``core.region_split``), and ranked by the voxels in them that are probably wrong (sum of
``1 - max_c p_c``) when the class probabilities are known, else by their uncertainty *mass*.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from napari_uqseg.core.case_scores import case_score_for, case_scores
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.region_split import MAX_REGION_VOXELS, split_large_components
from napari_uqseg.core.review_ranking import Region, ReviewRanking


def _check_same_shape(uncertainty: np.ndarray, other: np.ndarray | None, name: str) -> np.ndarray:
    u = np.asarray(uncertainty, dtype=np.float64)
    if other is not None and np.shape(other) != u.shape:
        raise InputError(name, f"shape {np.shape(other)} does not match uncertainty shape {u.shape}")
    return u


def _axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise InputError("axis", f"must be in [-{ndim}, {ndim}) for a {ndim}-D volume, got {axis}")
    return axis % ndim


def foreground_roi(mask: np.ndarray, dilation: int = 2) -> np.ndarray:
    """Predicted foreground ``mask != 0`` dilated by ``dilation`` voxels (face connectivity, city-block radius).

    An empty prediction gives the whole volume: a case where nothing was found still needs a score,
    and its uncertainty (e.g. about a missed structure) is then spread over the volume.
    Returns a bool array of the mask's shape.
    """
    if dilation < 0:
        raise InputError("dilation", f"must be >= 0, got {dilation}")
    fg = np.asarray(mask) != 0
    if not fg.any():
        return np.ones(fg.shape, dtype=bool)
    if dilation == 0:  # iterations=0 would mean "until nothing changes" in scipy
        return fg
    return ndimage.binary_dilation(fg, iterations=dilation)


def case_score(uncertainty: np.ndarray, mask: np.ndarray, dilation: int = 2, top_percent: float | None = None) -> float:
    """Case-level uncertainty: mean over the dilated predicted foreground (:func:`foreground_roi`).

    Parameters
    ----------
    uncertainty : np.ndarray
        ``(*S)`` uncertainty map.
    mask : np.ndarray
        ``(*S)`` predicted labels.
    dilation : int
        ROI dilation in voxels.
    top_percent : float, optional
        If given (in ``(0, 100]``), the mean of the top ``ceil(k % · n)`` ROI values instead, which
        does not shrink when the structure is large and the uncertainty local.

    Returns
    -------
    float
        NaN for an empty volume.
    """
    u = _check_same_shape(uncertainty, mask, "mask")
    values = u[foreground_roi(mask, dilation)]
    if values.size == 0:
        return float("nan")
    if top_percent is None:
        return float(values.mean())
    if not 0.0 < top_percent <= 100.0:
        raise InputError("top_percent", f"must be in (0, 100], got {top_percent}")
    k = max(1, math.ceil(top_percent / 100.0 * values.size - 1e-9))
    return float(np.partition(values, values.size - k)[values.size - k :].mean())


def slice_scores(uncertainty: np.ndarray, mask: np.ndarray, axis: int, dilation: int = 2) -> np.ndarray:
    """Mean uncertainty of each slice along ``axis`` inside :func:`foreground_roi`.

    Returns a ``(S[axis],)`` float64 array, 0.0 for slices without ROI voxels.
    """
    u = _check_same_shape(uncertainty, mask, "mask")
    axis = _axis(axis, u.ndim)
    roi = foreground_roi(mask, dilation)
    other = tuple(a for a in range(u.ndim) if a != axis)
    sums = np.where(roi, u, 0.0).sum(axis=other)
    counts = roi.sum(axis=other)
    return np.divide(sums, counts, out=np.zeros(u.shape[axis]), where=counts > 0)


def probably_wrong(probabilities: np.ndarray) -> np.ndarray:
    """``1 - max_c p_c``: the chance each voxel's predicted class is wrong; ``(C, *S) -> (*S)`` float64."""
    return 1.0 - np.asarray(probabilities, dtype=np.float64).max(axis=0)


def _ranked_components(
    u: np.ndarray,
    roi: np.ndarray | None,
    options: dict[str, Any],
    wrong: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Label ``u > threshold`` in roi, split to the size bound, and rank.

    Returns labels, ranked label ids, then counts, uncertainty sums and expected errors (indexed by
    label; expected errors are the uncertainty sums when ``wrong`` is None) and the threshold.
    """
    roi = np.ones(u.shape, dtype=bool) if roi is None else np.asarray(roi, dtype=bool)
    quantile, threshold = options.get("quantile", 0.9), options.get("threshold")
    max_regions = options.get("max_regions", 200)
    max_voxels = int(options.get("max_region_voxels", MAX_REGION_VOXELS))
    if not 0.0 <= quantile <= 1.0:
        raise InputError("quantile", f"must be in [0, 1], got {quantile}")
    if max_regions is not None and max_regions < 0:
        raise InputError("max_regions", f"must be >= 0 or None, got {max_regions}")
    if threshold is None:
        inside = u[roi]
        threshold = float(np.quantile(inside, quantile)) if inside.size else float("nan")
    hot = roi & (u > threshold)
    labels, n = ndimage.label(hot, structure=np.ones((3,) * u.ndim, dtype=bool))  # full connectivity
    labels, n = split_large_components(labels, n, max_voxels)
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    sums = np.bincount(labels.ravel(), weights=u.ravel(), minlength=n + 1)
    expected = sums if wrong is None else np.bincount(labels.ravel(), weights=wrong.ravel(), minlength=n + 1)
    ids = np.arange(1, n + 1)
    ids = ids[counts[1:] >= max(int(options.get("min_voxels", 3)), 1)]
    ids = ids[np.lexsort((ids, -sums[ids], -expected[ids]))]  # expected errors, then mass; ties: raster order
    if max_regions is not None:
        ids = ids[:max_regions]
    return labels, ids, counts, sums, expected, float(threshold)


def find_regions(
    uncertainty: np.ndarray,
    roi: np.ndarray | None = None,
    threshold: float | None = None,
    quantile: float = 0.9,
    min_voxels: int = 3,
    axis: int = 0,
    max_regions: int | None = 200,
    *,
    probabilities: np.ndarray | None = None,
    max_region_voxels: int = MAX_REGION_VOXELS,
) -> tuple[list[Region], float]:
    """Uncertain regions of at most ``max_region_voxels`` voxels, ranked by their probably wrong voxels.

    Parameters
    ----------
    uncertainty : np.ndarray
        ``(*S)`` uncertainty map.
    roi : np.ndarray, optional
        ``(*S)`` bool; regions are found inside it only (default: everywhere).
    threshold : float, optional
        Voxels with ``u > threshold`` form regions; default the ``quantile`` of ``u`` inside the ROI.
    quantile : float
        Quantile used when ``threshold`` is not given.
    min_voxels : int
        Smaller regions are dropped.
    axis : int
        Axis along which ``Region.slice_index`` is given.
    max_regions : int or None
        Keep at most this many (None: all).
    probabilities : np.ndarray, optional
        ``(C, *S)`` class probabilities; give ``Region.expected_errors`` (sum of ``1 - max_c p_c``), the
        ranking key. Without them regions are ranked by uncertainty mass.
    max_region_voxels : int
        Size bound: larger connected components are split (``core.region_split``).

    Returns
    -------
    regions : list of Region
        Ranked, ``id`` = rank from 1. Components use full (26- in 3-D) connectivity.
    threshold : float
        The threshold used (NaN if the ROI is empty).
    """
    u = _check_same_shape(uncertainty, roi, "roi")
    axis = _axis(axis, u.ndim)
    wrong = None if probabilities is None else probably_wrong(_check_probabilities(probabilities, u.shape))
    options = {"threshold": threshold, "quantile": quantile, "min_voxels": min_voxels, "max_regions": max_regions}
    options["max_region_voxels"] = max_region_voxels
    labels, ids, counts, sums, expected, threshold = _ranked_components(u, roi, options, wrong)
    if ids.size == 0:
        return [], threshold
    index = ids.tolist()
    peaks = np.atleast_1d(ndimage.maximum(u, labels, index))
    centroids = ndimage.center_of_mass(labels > 0, labels, index)
    boxes = ndimage.find_objects(labels)
    regions = []
    for rank, (lab, peak, centre) in enumerate(zip(index, peaks, centroids, strict=True), start=1):
        centre = tuple(float(c) for c in centre)
        regions.append(
            Region(
                id=rank,
                score=float(sums[lab] / counts[lab]),
                peak=float(peak),
                voxels=int(counts[lab]),
                centroid=centre,
                bbox=tuple((int(s.start), int(s.stop)) for s in boxes[lab - 1]),
                slice_index=math.floor(centre[axis] + 0.5),  # half up: Python's round() sends 2.5 to 2
                mass=float(sums[lab]),
                expected_errors=float(expected[lab]) if wrong is not None else 0.0,
            )
        )
    return regions, threshold


def region_label_image(
    uncertainty: np.ndarray,
    mask: np.ndarray,
    probabilities: np.ndarray | None = None,
    *,
    dilation: int = 2,
    **options: Any,
) -> np.ndarray:
    """The voxels of each ranked region: ``(*S)`` int32, value ``k`` = region ``id`` k (rank), 0 elsewhere.

    Same regions as :func:`build_review` with the same arguments (``options``: ``threshold``, ``quantile``,
    ``min_voxels``, ``max_regions``, ``max_region_voxels``), for tools that act on region voxels (a
    simulated reader, a benchmark).
    """
    u = _check_same_shape(uncertainty, mask, "mask")
    wrong = None if probabilities is None else probably_wrong(_check_probabilities(probabilities, u.shape))
    labels, ids, _, _, _, _ = _ranked_components(u, foreground_roi(mask, dilation), options, wrong)
    lookup = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    lookup[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return lookup[labels]


def _check_probabilities(probabilities: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    p = np.asarray(probabilities)
    if p.ndim != len(shape) + 1 or p.shape[1:] != shape:
        raise InputError("probabilities", f"shape {p.shape} must be (C, *{shape})")
    return p


def build_review(
    uncertainty: np.ndarray,
    mask: np.ndarray,
    axis: int = 0,
    map_name: str = "entropy",
    *,
    probabilities: np.ndarray | None = None,
    maps: dict[str, np.ndarray] | None = None,
    method: str | None = None,
    model_case_score: str | None = None,
    dilation: int = 2,
    top_percent: float | None = None,
    threshold: float | None = None,
    quantile: float = 0.9,
    min_voxels: int = 3,
    max_regions: int | None = 200,
    max_region_voxels: int = MAX_REGION_VOXELS,
) -> ReviewRanking:
    """Case score, slice scores and ranked regions, all inside the dilated predicted foreground.

    Parameters
    ----------
    uncertainty : np.ndarray
        ``(*S)`` uncertainty map.
    mask : np.ndarray
        ``(*S)`` predicted labels (empty prediction: the ROI is the whole volume).
    axis : int
        Slicing axis for slice scores and region slice indices.
    map_name : str
        Name recorded in the ranking.
    probabilities : np.ndarray, optional
        ``(C, *S)`` class probabilities: regions are ranked by expected errors and the case score is the
        method's default (``core.case_scores``). Without them the case score is the mean uncertainty
        (``top_percent``: see :func:`case_score`) and regions are ranked by uncertainty mass.
    maps : dict of str to np.ndarray, optional
        Every ``(*S)`` map of the prediction (for the scores built on ``class_std`` and mutual information).
    method : str, optional
        Method that predicted; picks the default case score unless ``model_case_score`` is given.
    model_case_score : str, optional
        The model's own default case score (chosen on its validation cases, stored in its card).
    dilation : int
        ROI dilation in voxels.
    threshold, quantile, min_voxels, max_regions, max_region_voxels
        See :func:`find_regions`.
    """
    u = _check_same_shape(uncertainty, mask, "mask")
    axis = _axis(axis, u.ndim)
    roi = foreground_roi(mask, dilation)
    regions, used = find_regions(
        u,
        roi,
        threshold,
        quantile,
        min_voxels,
        axis,
        max_regions,
        probabilities=probabilities,
        max_region_voxels=max_region_voxels,
    )
    ranking = ReviewRanking(
        map_name=map_name,
        axis=axis,
        case_score=case_score(u, mask, dilation, top_percent),
        slice_scores=[float(s) for s in slice_scores(u, mask, axis, dilation)],
        regions=regions,
        threshold=used,
        rank_by="mass",
        max_region_voxels=int(max_region_voxels),
    )
    if probabilities is not None:
        scores = case_scores(probabilities, np.asarray(mask), {**(maps or {}), map_name: u}, roi, map_name)
        ranking.case_score_name, ranking.case_score = case_score_for(scores, method, model_case_score)
        ranking.case_scores, ranking.rank_by = scores, "expected_errors"
    else:
        ranking.case_scores = {"mean_uncertainty": ranking.case_score}
    return ranking


def review_recall(
    uncertainty: np.ndarray,
    errors: np.ndarray,
    roi: np.ndarray | None = None,
    budget: float = 0.10,
    **options: Any,
) -> float:
    """Share of the error voxels in the ROI that a reader finds by reviewing the top regions.

    Regions are found inside ``roi`` as :func:`find_regions` finds them, ranked by uncertainty mass
    (``options`` are passed on: ``threshold``, ``quantile``, ``min_voxels``, ``max_regions``,
    ``max_region_voxels``) and taken in rank order while their
    voxels fit in ``budget * |ROI|``; the region that crosses the budget contributes only its
    ``floor(remaining budget)`` most uncertain voxels (ties by voxel index). If the regions run out first
    the rest of the budget is unused.

    Parameters
    ----------
    uncertainty : np.ndarray
        ``(*S)`` uncertainty map.
    errors : np.ndarray
        ``(*S)`` bool, voxel misclassified.
    roi : np.ndarray, optional
        ``(*S)`` bool evaluation region (default: everywhere).
    budget : float
        Reviewed share of ROI voxels, in ``(0, 1]``.

    Returns
    -------
    float
        Recall in ``[0, 1]``; NaN when the ROI holds no error voxels.
    """
    u = _check_same_shape(uncertainty, errors, "errors")
    _check_same_shape(u, roi, "roi")
    if not 0.0 < budget <= 1.0:
        raise InputError("budget", f"must be in (0, 1], got {budget}")
    unknown = set(options) - {"threshold", "quantile", "min_voxels", "max_regions", "max_region_voxels"}
    if unknown:
        raise InputError("options", f"unknown region options {sorted(unknown)}")
    roi = np.ones(u.shape, dtype=bool) if roi is None else np.asarray(roi, dtype=bool)
    err = np.asarray(errors, dtype=bool) & roi
    n_err = int(err.sum())
    if n_err == 0:
        return float("nan")
    labels, ids, counts, _, _, _ = _ranked_components(u, roi, options)
    err_per_label = np.bincount(labels.ravel(), weights=err.ravel(), minlength=counts.size)
    allowed = budget * int(roi.sum())
    used = 0
    found = 0.0
    for lab in ids.tolist():
        if used + counts[lab] <= allowed:
            used += int(counts[lab])
            found += err_per_label[lab]
            continue
        take = math.floor(allowed - used + 1e-9)
        if take > 0:
            box = ndimage.find_objects(labels, max_label=lab)[lab - 1]  # rank the region's voxels inside its bbox only
            inside = labels[box] == lab
            u_in, err_in = u[box][inside], err[box][inside]
            top = np.lexsort((np.arange(u_in.size), -u_in))[:take]
            found += float(err_in[top].sum())
        break
    return float(found / n_err)
