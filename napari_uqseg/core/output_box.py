"""Boxes of voxels for region-of-interest transfer: find, grow, write as text, crop and paste (numpy only).

A box is one ``(start, stop)`` pair of voxel indices per spatial axis, start inclusive and stop exclusive
(the convention of ``Region.bbox``). The server serves an output cropped to a box; the client pastes the crop
into a full-size array whose voxels outside the box hold the output's background value (:func:`fill_value`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.metrics import foreground_bbox

Box = tuple[tuple[int, int], ...]

#: ``i0:i1,j0:j1,k0:k1`` (the query parameter ``box`` and the header ``X-UQSeg-Box``)
BOX_TEXT = re.compile(r"^\d{1,6}:\d{1,6}(,\d{1,6}:\d{1,6}){2}$")
#: headers of a cropped output: the box served, the full shape ``I,J,K``, and the largest difference between
#: the output and its background value outside the box (in the output's units)
BOX_HEADER = "X-UQSeg-Box"
SHAPE_HEADER = "X-UQSeg-Shape"
OUTSIDE_HEADER = "X-UQSeg-Outside-Error"


def foreground_box(mask: np.ndarray) -> Box | None:
    """The smallest box holding every non-zero voxel of ``mask`` (``(I, J, K)``); ``None`` when there is none."""
    slices = foreground_bbox(mask)
    return None if slices is None else tuple((s.start, s.stop) for s in slices)


def union_box(boxes: Iterable[Sequence[Sequence[int]] | None]) -> Box | None:
    """The smallest box holding every given box (``None`` entries skipped); ``None`` when none is given."""
    given = [tuple((int(a), int(b)) for a, b in box) for box in boxes if box is not None]
    if not given:
        return None
    return tuple((min(b[axis][0] for b in given), max(b[axis][1] for b in given)) for axis in range(len(given[0])))


def grow_box(box: Box, margin: int, shape: Sequence[int]) -> Box:
    """``box`` widened by ``margin`` voxels on every side, clipped to a volume of ``shape``."""
    return tuple((max(0, a - margin), min(int(n), b + margin)) for (a, b), n in zip(box, shape, strict=True))


def is_whole(box: Box, shape: Sequence[int]) -> bool:
    """Whether ``box`` covers the whole volume of ``shape``."""
    return all(a == 0 and b == int(n) for (a, b), n in zip(box, shape, strict=True))


def box_text(box: Box) -> str:
    """``i0:i1,j0:j1,k0:k1``."""
    return ",".join(f"{a}:{b}" for a, b in box)


def parse_box(text: str, shape: Sequence[int], source: str = "box") -> Box:
    """The box written as ``i0:i1,j0:j1,k0:k1``, checked against a volume of ``shape``.

    Raises
    ------
    InputError
        Not three ``start:stop`` pairs, a start not below its stop, or a stop beyond the volume.
    """
    if not isinstance(text, str) or not BOX_TEXT.fullmatch(text):
        raise InputError(source, f"expected i0:i1,j0:j1,k0:k1 (voxel indices, stop exclusive), got {str(text)[:80]!r}")
    box = tuple((int(a), int(b)) for a, b in (part.split(":") for part in text.split(",")))
    for axis, ((a, b), n) in enumerate(zip(box, shape, strict=True)):
        if not a < b <= int(n):
            raise InputError(source, f"axis {axis}: {a}:{b} is not a non-empty range inside 0:{int(n)}")
    return box


def box_slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in box)


def crop_affine(affine: np.ndarray, box: Box) -> np.ndarray:
    """Affine of the crop starting at ``box``'s first voxel: the same world position for every voxel."""
    out = np.array(affine, dtype=np.float64, copy=True)
    out[:3, 3] = out[:3, :3] @ np.array([a for a, _ in box], dtype=np.float64) + out[:3, 3]
    return out


def fill_value(name: str, channels: int = 1) -> np.ndarray:
    """Value of an output outside the box: 0, except probability channel 0 (background), which is 1.

    Returns an array of shape ``(channels,)`` for ``probabilities`` (``(I, J, K, C)`` on the wire, channels
    last) and of shape ``()`` for the mask and the uncertainty maps.
    """
    if name.startswith("probabilities"):
        fill = np.zeros(channels, np.float32)
        fill[0] = 1.0
        return fill
    return np.zeros((), np.float32)


def paste(crop: np.ndarray, box: Box, shape: Sequence[int], fill: np.ndarray) -> np.ndarray:
    """A full-size array of ``shape`` (plus ``crop``'s trailing channel axis) holding ``crop`` at ``box``.

    Voxels outside the box hold ``fill`` (broadcast over the channel axis).
    """
    full = np.empty(tuple(int(n) for n in shape) + crop.shape[len(box) :], crop.dtype)
    full[...] = fill.astype(crop.dtype)
    full[box_slices(box)] = crop
    return full


def outside_error(array: np.ndarray, box: Box, fill: np.ndarray) -> float:
    """Largest ``|array - fill|`` outside ``box``: what a paste of the crop loses (0.0 when nothing is outside).

    ``array`` and ``fill`` are in the same units (stored levels and the fill's level, say). The outside is
    visited as disjoint slabs (before and after the box along each axis) reduced to their per-channel minimum
    and maximum, so nothing of the volume's size is copied.
    """
    worst = 0.0
    spatial = tuple(range(len(box)))
    for axis, (a, b) in enumerate(box):
        inner = box_slices(box[:axis])
        for part in (slice(0, a), slice(b, array.shape[axis])):
            slab = array[(*inner, part)]
            if slab.size:
                high = np.max(slab, axis=spatial).astype(np.float64) - fill
                low = fill - np.min(slab, axis=spatial).astype(np.float64)
                worst = max(worst, float(np.max(high)), float(np.max(low)))
    return worst
