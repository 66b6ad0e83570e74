"""The ``Volume`` type: a voxel array with the affine that places it in RAS millimetres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_uqseg.core.errors import InputError


@dataclass(frozen=True)
class Volume:
    """A 3-D (or 2-D) image or label map in NIfTI voxel order.

    Attributes
    ----------
    array : np.ndarray
        Shape ``(I, J, K)`` (or ``(I, J)``), voxel order of the NIfTI file.
    affine : np.ndarray
        Shape ``(4, 4)``, voxel index -> RAS millimetres (the NIfTI sform/qform).
    """

    array: np.ndarray
    affine: np.ndarray

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise InputError("affine", f"must be a finite 4x4 matrix, got shape {affine.shape}")
        object.__setattr__(self, "affine", affine)

    @property
    def shape(self) -> tuple[int, ...]:
        """Voxel grid shape."""
        return tuple(int(s) for s in self.array.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along each array axis (column norms of the affine)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return tuple(float(s) for s in norms[: self.array.ndim])

    def with_array(self, array: np.ndarray) -> Volume:
        """A volume on the same grid holding ``array`` (same spatial shape required)."""
        if tuple(array.shape[-self.array.ndim :]) != self.shape:
            raise InputError("array", f"shape {array.shape} does not match the grid {self.shape}")
        return Volume(array, self.affine)


def check_image_array(array: np.ndarray, source: str, spatial_dims: int = 3) -> np.ndarray:
    """Validate an intensity image and return it as float32.

    Parameters
    ----------
    array : np.ndarray
        Image of shape ``(I, J, K)`` for ``spatial_dims=3``; a trailing singleton axis is dropped.
    source : str
        Name used in error messages (usually the file path).
    spatial_dims : int
        2 or 3.

    Raises
    ------
    InputError
        Wrong dimensionality, empty, non-numeric or complex, NaN or Inf voxels.
    """
    array = np.asarray(array)
    while array.ndim > spatial_dims and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != spatial_dims:
        raise InputError(source, f"expected a {spatial_dims}D image, got {array.ndim}D with shape {array.shape}")
    if array.size == 0 or min(array.shape) < 1:
        raise InputError(source, f"image is empty (shape {array.shape})")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InputError(source, f"voxel type {array.dtype} is not numeric")
    if np.iscomplexobj(array):
        raise InputError(source, f"voxel type {array.dtype} is complex (the imaginary part would be lost)")
    array = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(source, f"{int(bad.sum())} voxels are NaN or Inf")
    return array


def check_label_array(array: np.ndarray, source: str, num_classes: int | None = None) -> np.ndarray:
    """Validate a label map and return it as uint8 (or int16 for > 255 classes).

    Raises
    ------
    InputError
        Non-integer values, negative labels, labels >= ``num_classes``, or an all-background map.
    """
    array = np.asarray(array)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise InputError(source, "label map has NaN or Inf voxels")
        if not np.all(array == np.round(array)):
            raise InputError(source, "label map has non-integer values")
    elif array.dtype.kind not in "iub":
        raise InputError(source, f"label voxel type {array.dtype} is not an integer type")
    if array.size and array.min() < 0:
        raise InputError(source, f"label map has negative label {int(array.min())}")
    if not np.any(array):
        raise InputError(source, "label map is empty (all background)")
    top = int(array.max())
    if num_classes is not None and top >= num_classes:
        raise InputError(source, f"label {top} is outside the {num_classes} classes of the dataset")
    return array.astype(np.uint8 if top < 256 else np.int16)
