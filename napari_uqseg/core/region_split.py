"""Split uncertain components that are too large to review at a glance into bounded, compact pieces.

A connected component of thresholded uncertainty can be the whole boundary shell of a structure. Each
component larger than ``max_voxels`` is bisected at the median coordinate of its voxels along its longest
bounding-box axis, again and again, until every piece holds at most ``max_voxels`` voxels; each piece is
then relabelled into its own connected parts, so a region is always connected and never larger than
the bound. The cut is deterministic (no seeds), so the same prediction always gives the same regions.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_uqseg.core.errors import InputError

#: default largest region, in voxels (about 6 x 6 x 7 voxels: a spot checked and fixed in seconds)
MAX_REGION_VOXELS = 256


def bisect_points(coords: np.ndarray, max_voxels: int) -> list[np.ndarray]:
    """Indices of ``coords`` split into groups of at most ``max_voxels`` by repeated median cuts.

    Parameters
    ----------
    coords : np.ndarray
        ``(N, D)`` integer voxel coordinates.
    max_voxels : int
        Largest group size, >= 1.

    Returns
    -------
    list of np.ndarray
        Index arrays into ``coords`` that partition ``range(N)``, in a deterministic order.
    """
    if max_voxels < 1:
        raise InputError("max_region_voxels", f"must be >= 1, got {max_voxels}")
    pending = [np.arange(len(coords))]
    groups = []
    while pending:
        index = pending.pop()
        if index.size <= max_voxels:
            groups.append(index)
            continue
        points = coords[index]
        axis = int(np.argmax(np.ptp(points, axis=0)))  # ties: the first (slowest) axis
        values = points[:, axis]
        cut = np.sort(values)[values.size // 2]
        left = values < cut
        if not left.any():  # the median is the minimum: cut just above it instead
            left = values <= cut
        pending.extend([index[~left], index[left]])
    return groups


def split_large_components(labels: np.ndarray, count: int, max_voxels: int) -> tuple[np.ndarray, int]:
    """Relabel ``labels`` so that no component has more than ``max_voxels`` voxels.

    Parameters
    ----------
    labels : np.ndarray
        ``(*S)`` int component labels, 0 = background, ``1..count`` components.
    count : int
        Number of components.
    max_voxels : int
        Largest region size in voxels.

    Returns
    -------
    labels : np.ndarray
        ``(*S)`` new labels; components within the bound keep their voxels, large ones become several
        connected pieces (full connectivity).
    count : int
        New number of labels.
    """
    if max_voxels < 1:
        raise InputError("max_region_voxels", f"must be >= 1, got {max_voxels}")
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    large = [lab for lab in range(1, count + 1) if sizes[lab] > max_voxels]
    if not large:
        return labels, count
    out = labels.copy()
    boxes = ndimage.find_objects(labels)
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    next_label = count + 1
    for lab in large:
        box = boxes[lab - 1]
        offset = np.array([s.start for s in box])
        coords = np.argwhere(labels[box] == lab)
        first = True
        for group in bisect_points(coords, max_voxels):
            # each piece is labelled inside its own small box, not the component's: a large component splits
            # into hundreds of pieces, and a box-sized array per piece made this quadratic in its size
            points = coords[group]
            low = points.min(axis=0)
            piece = np.zeros(tuple(points.max(axis=0) - low + 1), dtype=bool)
            piece[tuple((points - low).T)] = True
            parts, n = ndimage.label(piece, structure=structure)
            for part in range(1, n + 1):
                where = tuple((np.argwhere(parts == part) + low + offset).T)
                if first:  # the first piece keeps the component's own label
                    out[where] = lab
                    first = False
                else:
                    out[where] = next_label
                    next_label += 1
    return out, next_label - 1
