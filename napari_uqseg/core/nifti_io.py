"""NIfTI reading and writing with the affine kept, validated inputs and atomic outputs."""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.core.durable import replace_durably
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_guard import DEFAULT_MAX_VOXELS, read_nifti_bytes
from napari_uqseg.core.volume import Volume, check_image_array, check_label_array

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _open_nifti(path: Path) -> nib.Nifti1Image:
    if not path.exists():
        raise InputError(str(path), "file does not exist")
    if not path.name.endswith(NIFTI_SUFFIXES):
        raise InputError(str(path), "not a NIfTI file (expected .nii or .nii.gz)")
    try:
        img = nib.load(str(path))
        if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
            raise InputError(str(path), f"not a NIfTI image ({type(img).__name__})")
        img.get_fdata(dtype=np.float32)  # force the read so truncation shows up here
    except InputError:
        raise
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(str(path), f"cannot be read as NIfTI ({exc.__class__.__name__}: {exc})") from exc
    return img


def load_image(path: str | os.PathLike, spatial_dims: int = 3) -> Volume:
    """Read an intensity image; float32 array of shape ``(I, J, K)`` and its affine.

    Raises
    ------
    InputError
        Missing file, not NIfTI, corrupt, wrong dimensionality, NaN/Inf voxels.
    """
    path = Path(path)
    img = _open_nifti(path)
    array = check_image_array(np.asanyarray(img.dataobj), str(path), spatial_dims)
    return Volume(array, img.affine)


def load_label(path: str | os.PathLike, image: Volume | None = None, num_classes: int | None = None) -> Volume:
    """Read a label map; checks integer labels, non-empty, and the grid of ``image`` if given.

    Raises
    ------
    InputError
        Non-integer or empty labels, shape or affine differing from ``image``.
    """
    path = Path(path)
    img = _open_nifti(path)
    array = np.asanyarray(img.dataobj)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    labels = check_label_array(array, str(path), num_classes)
    if image is not None:
        if labels.shape != image.shape:
            raise InputError(str(path), f"label shape {labels.shape} differs from image shape {image.shape}")
        if not np.allclose(img.affine, image.affine, atol=1e-3):
            raise InputError(str(path), "label affine differs from the image affine")
    return Volume(labels, img.affine)


def to_nifti(volume: Volume, dtype: np.dtype | type | None = None, scale: float | None = None) -> nib.Nifti1Image:
    """Build a NIfTI image; with ``scale``, values are stored as integers times ``scl_slope = scale``.

    float16 arrays (NIfTI-1 has no such type) are written as float32 unless ``dtype`` says otherwise.
    """
    array = volume.array
    if scale is not None:
        img = nib.Nifti1Image(_quantised(array, scale), volume.affine)
        img.header.set_slope_inter(scale, 0.0)
        return img
    dtype = dtype or (np.float32 if array.dtype == np.float16 else None)
    img = nib.Nifti1Image(np.asarray(array, dtype=dtype) if dtype else array, volume.affine)
    img.header.set_data_dtype(img.get_data_dtype())
    return img


def _quantised(array: np.ndarray, scale: float) -> np.ndarray:
    """``clip(rint(array / scale), 0, 255)`` as uint8 (an image, ``ndim >= 1``), in float32 slabs of ~1M voxels."""
    out = np.empty(array.shape, np.uint8)
    step = max(1, (1 << 20) // max(1, array[:1].size))
    for i in range(0, array.shape[0], step):
        levels = np.divide(array[i : i + step], scale, dtype=np.float32)
        np.clip(np.rint(levels, out=levels), 0, np.iinfo(np.uint8).max, out=levels)
        out[i : i + step] = levels
    return out


def save_volume(volume: Volume, path: str | os.PathLike, dtype: np.dtype | type | None = None) -> Path:
    """Write ``volume`` to ``path`` atomically (temporary file, fsync, rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = nifti_bytes(volume, dtype=dtype, compress=path.name.endswith(".gz"))
    atomic_write_bytes(path, data)
    return path


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``data`` so that ``path`` is either the old file or the complete new one, never half.

    The file is created with permission ``mode`` (0600 for patient data and tokens: it is never
    readable by others, not even for a moment), fsync'd, renamed, and the rename fsync'd.
    ``durable=False`` skips both fsyncs (for what can be recomputed: after a power loss the file may be
    missing or empty, never another file's content).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")  # mkstemp: 0600
    try:
        if mode != 0o600:
            os.fchmod(fd, mode)  # outputs are meant to be shared like any written file unless asked otherwise
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if durable:
            replace_durably(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def nifti_bytes(
    volume: Volume,
    dtype: np.dtype | type | None = None,
    scale: float | None = None,
    compress: bool = True,
    rle: bool = False,
) -> bytes:
    """Serialise to single-file NIfTI-1 bytes (gzip-compressed when ``compress``; see :func:`gzip_rle`)."""
    raw = to_nifti(volume, dtype=dtype, scale=scale).to_bytes()
    if not compress:
        return raw
    return gzip_rle(raw) if rle else gzip.compress(raw, compresslevel=1)


def gzip_rle(raw: bytes) -> bytes:
    """gzip bytes made with run-length matches only (zlib ``Z_RLE``), readable by any gzip reader.

    For uint8 levels (masks, quantised maps) about as small as ``compresslevel=1`` and faster, the most on
    noisy maps (docs/architecture.md, "Performance"); float32 images keep the default strategy.
    """
    packer = zlib.compressobj(1, zlib.DEFLATED, 31, 8, zlib.Z_RLE)  # wbits 31: gzip header and trailer
    return packer.compress(raw) + packer.flush()


def volume_from_bytes(data: bytes, source: str = "upload", max_voxels: int = DEFAULT_MAX_VOXELS) -> nib.Nifti1Image:
    """Parse NIfTI-1 bytes (plain or gzip) into a nibabel image holding its voxels as an array.

    The header is checked before any voxel is read and gzip is inflated only as far as the header
    declares (``core.nifti_guard``).

    Raises
    ------
    InputError
        Garbage, truncated or oversized bytes, more than ``max_voxels`` voxels, non-real voxel types.
    """
    return read_nifti_bytes(data, source, max_voxels)


def image_from_bytes(
    data: bytes, source: str = "upload", spatial_dims: int = 3, max_voxels: int = DEFAULT_MAX_VOXELS
) -> Volume:
    """Intensity image from NIfTI bytes, validated like :func:`load_image`."""
    img = volume_from_bytes(data, source, max_voxels)
    return Volume(check_image_array(np.asanyarray(img.dataobj), source, spatial_dims), img.affine)


def float_map_from_bytes(data: bytes, source: str = "download") -> Volume:
    """Any NIfTI bytes as float32 (applies ``scl_slope``), for probability and uncertainty maps."""
    img = volume_from_bytes(data, source)
    return Volume(np.asarray(img.get_fdata(dtype=np.float32)), img.affine)
