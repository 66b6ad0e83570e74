"""Which voxels of a correction a person reviewed: the optional mask sent with a correction.

A reader who corrects only the review queue's regions leaves the rest of the mask as the model predicted
it, errors included. The correction then carries a reviewed mask (bool, on the image's grid), and the
fine-tune can train on those voxels only (``engine.finetune``, option ``loss_mask="reviewed"``). A correction without
one means the whole case was reviewed (every correction stored before the mask existed).

The viewers' rule (:func:`reviewed_mask`): the bounding boxes of the regions marked ``"done"`` (what the
viewer showed the reader around each region) plus every voxel the reader changed.
"""

from __future__ import annotations

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review_ranking import ReviewRanking

#: the region state that counts as reviewed (a flagged region was looked at but not settled)
REVIEWED_STATE = "done"


def check_reviewed_mask(array: np.ndarray, shape: tuple[int, ...], source: str = "reviewed") -> np.ndarray:
    """A reviewed mask as bool ``shape``.

    Raises
    ------
    InputError
        Another shape, values other than 0 and 1, or no reviewed voxel (send no mask when the whole case was
        reviewed; a correction of which nothing was reviewed has nothing to train on).
    """
    array = np.asarray(array)
    while array.ndim > len(shape) and array.shape[-1] == 1:
        array = array[..., 0]
    if array.shape != tuple(shape):
        raise InputError(source, f"shape {array.shape} differs from the image shape {tuple(shape)}")
    if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
        raise InputError(source, "a reviewed mask holds only 0 (not reviewed) and 1 (reviewed)")
    if not array.any():
        raise InputError(source, "marks no voxel as reviewed; omit it if the whole case was reviewed")
    return array.astype(bool)


def reviewed_mask(ranking: ReviewRanking, label: np.ndarray, predicted: np.ndarray) -> np.ndarray | None:
    """The viewers' reviewed mask: boxes of the ``"done"`` regions plus the voxels the reader changed.

    Parameters
    ----------
    ranking : ReviewRanking
        The case's review queue with the reader's region states (boxes in the label's voxel order).
    label, predicted : ndarray
        The edited and the predicted label maps, same shape ``(I, J, K)``.

    Returns
    -------
    ndarray of bool or None
        ``None`` when no region is marked done: the reader did not work from the queue, so the whole case
        counts as reviewed (as before reviewed masks existed).
    """
    label, predicted = np.asarray(label), np.asarray(predicted)
    if label.shape != predicted.shape:
        raise InputError("label", f"shape {label.shape} differs from the prediction's {predicted.shape}")
    done = [r for r in ranking.regions if r.state == REVIEWED_STATE]
    if not done:
        return None
    mask = label != predicted
    for region in done:
        if len(region.bbox) != label.ndim:
            raise InputError("review", f"region {region.id}'s box has {len(region.bbox)} axes, the mask {label.ndim}")
        mask[tuple(slice(max(0, a), b) for a, b in region.bbox)] = True
    return mask
