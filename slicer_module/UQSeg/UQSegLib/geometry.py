"""Slicer array/matrix conventions <-> the NIfTI ``Volume`` the server speaks (pure numpy, no Slicer).

Slicer keeps every volume in RAS: ``vtkMRMLVolumeNode.GetIJKToRASMatrix`` maps voxel ``(i, j, k)`` to RAS
millimetres, exactly what a NIfTI affine does. Files stored in LPS (NRRD, DICOM) are flipped to RAS when Slicer
loads them, so the node's matrix is already RAS. What differs is the array order: ``slicer.util.arrayFromVolume``
returns ``[k, j, i]`` (KJI, VTK's memory order) while a ``Volume`` holds ``[i, j, k]``. These functions do the
transposes and check that results come back on the grid of the input.
"""

from __future__ import annotations

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume

#: multiplies a 4x4 LPS-world matrix into RAS (and back: the flip is its own inverse)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: largest affine difference in mm still counted as the same grid (NIfTI stores affines as float32)
GRID_ATOL_MM = 1e-3


def check_matrix(matrix: np.ndarray, source: str) -> np.ndarray:
    """Validate a finite, invertible 4x4 voxel-to-world matrix; returns it as float64.

    Raises
    ------
    InputError
        Wrong shape, NaN/Inf entries or a singular 3x3 part (zero spacing).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise InputError(source, f"must be a finite 4x4 matrix, got shape {m.shape}")
    if abs(np.linalg.det(m[:3, :3])) < 1e-12:
        raise InputError(source, "voxel-to-world matrix is singular (a spacing is zero)")
    return m


def volume_from_kji(array_kji: np.ndarray, ijk_to_ras: np.ndarray, source: str = "volume") -> Volume:
    """A ``Volume`` (IJK order, RAS affine) from a Slicer array and its node's IJK-to-RAS matrix.

    Parameters
    ----------
    array_kji : np.ndarray
        ``(K, J, I)`` array as returned by ``slicer.util.arrayFromVolume``; copied, never a view of the node.
    ijk_to_ras : np.ndarray
        ``(4, 4)`` voxel index -> RAS mm, from ``GetIJKToRASMatrix``.
    source : str
        Name used in error messages (the node name).

    Raises
    ------
    InputError
        Not a 3-D scalar volume, or a bad matrix.
    """
    array = np.asarray(array_kji)
    if array.ndim != 3:
        raise InputError(source, f"expected a 3D scalar volume, got an array of shape {array.shape}")
    return Volume(np.ascontiguousarray(array.transpose(2, 1, 0)), check_matrix(ijk_to_ras, source))


def kji_from_volume(
    volume: Volume,
    ijk_to_ras: np.ndarray | None = None,
    shape_kji: tuple[int, ...] | None = None,
    source: str = "result",
) -> np.ndarray:
    """The array of ``volume`` in Slicer's KJI order, checked to lie on the expected grid.

    Parameters
    ----------
    volume : Volume
        ``(I, J, K)`` map or ``(C, I, J, K)`` per-class maps.
    ijk_to_ras : np.ndarray, optional
        ``(4, 4)`` matrix of the node the result will be shown on; the volume's affine must match it.
    shape_kji : tuple of int, optional
        ``(K, J, I)`` shape of that node's array.
    source : str
        Name used in error messages.

    Returns
    -------
    np.ndarray
        ``(K, J, I)`` (or ``(C, K, J, I)``) contiguous array.

    Raises
    ------
    InputError
        The volume's grid differs from the reference (a server that resampled, or a wrong node).
    """
    array = np.asarray(volume.array)
    if array.ndim not in (3, 4):
        raise InputError(source, f"expected a 3D map or per-class 4D maps, got shape {array.shape}")
    kji = array.transpose(2, 1, 0) if array.ndim == 3 else array.transpose(0, 3, 2, 1)
    if ijk_to_ras is not None and not np.allclose(volume.affine, ijk_to_ras, atol=GRID_ATOL_MM):
        raise InputError(source, "is not on the input volume's grid (its affine differs from the node's IJK-to-RAS)")
    if shape_kji is not None and tuple(kji.shape[-3:]) != tuple(shape_kji):
        raise InputError(source, f"grid {tuple(kji.shape[-3:])} (KJI) differs from the volume's {tuple(shape_kji)}")
    return np.ascontiguousarray(kji)


def voxel_to_ras(points_ijk: np.ndarray, ijk_to_ras: np.ndarray) -> np.ndarray:
    """Map ``(N, 3)`` (or ``(3,)``) continuous IJK voxel coordinates to RAS mm; same leading shape."""
    p = np.asarray(points_ijk, dtype=np.float64)
    m = check_matrix(ijk_to_ras, "ijk_to_ras")
    return p @ m[:3, :3].T + m[:3, 3]


def ras_to_voxel(points_ras: np.ndarray, ijk_to_ras: np.ndarray) -> np.ndarray:
    """Inverse of :func:`voxel_to_ras`: RAS mm -> continuous IJK voxel coordinates."""
    p = np.asarray(points_ras, dtype=np.float64)
    m = np.linalg.inv(check_matrix(ijk_to_ras, "ijk_to_ras"))
    return p @ m[:3, :3].T + m[:3, 3]
