"""Patient geometry of DICOM slices: orientation, position and spacing tags -> one RAS affine for the stack.

DICOM places pixel (column c, row r) of a slice at ``IPP + c * Δc * X + r * Δr * Y`` in LPS millimetres
(``X``, ``Y`` = the row and column direction cosines of ImageOrientationPatient, ``Δr, Δc`` = PixelSpacing).
The volume keeps NIfTI voxel order (column, row, slice) with slices sorted along ``X × Y``, so every series
of the same anatomy gives the same array whatever order its files or instance numbers come in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_uqseg.core.errors import InputError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: tolerance on direction cosines (unit length, orthogonality, equality between slices)
COSINE_TOL = 1e-3
#: relative tolerance on slice spacing (fraction of the mean step)
SPACING_TOL = 0.01


def _floats(value: Any, count: int, name: str) -> np.ndarray:
    if value is None or (hasattr(value, "__len__") and len(value) == 0):
        raise InputError(name, "is missing")
    try:
        array = np.array([float(v) for v in (value if isinstance(value, Sequence) else [value])], dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(name, "is not numeric") from exc
    if array.shape != (count,) or not np.all(np.isfinite(array)):
        raise InputError(name, f"needs {count} finite numbers, got {array.size}")
    return array


@dataclass(frozen=True)
class SliceGeometry:
    """Where one slice (or frame) lies, in LPS millimetres.

    Attributes
    ----------
    row_dir, col_dir : np.ndarray
        ``(3,)`` unit vectors: direction of increasing column index and of increasing row index.
    position : np.ndarray
        ``(3,)`` centre of the first pixel (ImagePositionPatient).
    spacing : tuple of float
        ``(row spacing, column spacing)`` in mm (PixelSpacing order).
    """

    row_dir: np.ndarray
    col_dir: np.ndarray
    position: np.ndarray
    spacing: tuple[float, float]

    @classmethod
    def from_tags(cls, orientation: Any, position: Any, spacing: Any) -> SliceGeometry:
        """Validate ImageOrientationPatient, ImagePositionPatient and PixelSpacing values.

        Raises
        ------
        InputError
            A tag missing or not numeric, direction cosines not unit or not orthogonal, spacing <= 0.
        """
        iop = _floats(orientation, 6, "ImageOrientationPatient")
        ipp = _floats(position, 3, "ImagePositionPatient")
        pixel = _floats(spacing, 2, "PixelSpacing")
        row_dir, col_dir = iop[:3], iop[3:]
        norms = np.linalg.norm(row_dir), np.linalg.norm(col_dir)
        if abs(norms[0] - 1) > COSINE_TOL or abs(norms[1] - 1) > COSINE_TOL:
            raise InputError("ImageOrientationPatient", "direction cosines are not unit vectors")
        if abs(float(np.dot(row_dir, col_dir))) > COSINE_TOL:
            raise InputError("ImageOrientationPatient", "row and column directions are not orthogonal")
        if np.any(pixel <= 0):
            raise InputError("PixelSpacing", f"must be positive, got {pixel.tolist()}")
        return cls(row_dir / norms[0], col_dir / norms[1], ipp, (float(pixel[0]), float(pixel[1])))

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)


def _check_steps(distances: np.ndarray, source: str) -> float:
    """Mean step along the normal; InputError for duplicates, gaps (missing slices) and uneven spacing."""
    steps = np.diff(distances)
    smallest = float(steps.min())
    if smallest < 1e-4:
        raise InputError(source, f"two slices share the position {distances[int(steps.argmin())]:.2f} mm")
    bad = np.abs(steps - smallest) > SPACING_TOL * smallest + 1e-4
    if not bad.any():
        return float((distances[-1] - distances[0]) / (len(distances) - 1))
    k = int(np.flatnonzero(bad)[0])
    ratio = steps[k] / smallest
    if abs(ratio - round(ratio)) <= SPACING_TOL * round(ratio):
        raise InputError(
            source,
            f"{round(ratio) - 1} slice(s) missing between {distances[k]:.2f} and {distances[k + 1]:.2f} mm "
            f"along the slice normal (step {smallest:.3g} mm elsewhere)",
        )
    raise InputError(
        source,
        f"non-uniform slice spacing: steps of {smallest:.3g} and {steps[k]:.3g} mm along the slice normal",
    )


def stack_geometry(slices: list[SliceGeometry], source: str) -> tuple[np.ndarray, np.ndarray]:
    """Order slices along their common normal and build the stack's affine.

    Returns
    -------
    order : np.ndarray
        ``(K,)`` indices of ``slices`` sorted by position along the normal.
    affine : np.ndarray
        ``(4, 4)`` voxel ``(column, row, slice)`` -> RAS millimetres.

    Raises
    ------
    InputError
        Fewer than 2 slices, differing orientation or pixel spacing, slices not stacked along the normal
        (sheared, e.g. gantry tilt), duplicate or missing slices, non-uniform spacing.
    """
    if len(slices) < 2:
        raise InputError(source, f"{len(slices)} slice(s); a volume needs at least 2")
    first = slices[0]
    for geometry in slices[1:]:
        if not (
            np.allclose(geometry.row_dir, first.row_dir, atol=COSINE_TOL)
            and np.allclose(geometry.col_dir, first.col_dir, atol=COSINE_TOL)
        ):
            raise InputError(source, "slices have different orientations (ImageOrientationPatient)")
        if not np.allclose(geometry.spacing, first.spacing, rtol=1e-4):
            raise InputError(source, f"slices have different pixel spacings {first.spacing} and {geometry.spacing}")
    normal = first.normal
    distances = np.array([float(np.dot(g.position, normal)) for g in slices])
    order = np.argsort(distances, kind="stable")
    positions = np.array([slices[i].position for i in order])
    step = _check_steps(distances[order], source)
    offsets = positions - positions[0] - np.outer(distances[order] - distances[order][0], normal)
    if np.abs(offsets).max() > max(0.01 * abs(step), 1e-3):
        raise InputError(source, "slices are not stacked along their normal (sheared stack, e.g. gantry tilt)")
    lps = np.eye(4)
    d_row, d_col = first.spacing
    lps[:3, 0], lps[:3, 1] = first.row_dir * d_col, first.col_dir * d_row
    lps[:3, 2], lps[:3, 3] = normal * step, positions[0]
    return order, LPS_TO_RAS @ lps
