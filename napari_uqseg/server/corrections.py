"""Validation of a submitted corrected label map (and its reviewed mask), and the payload hash that makes
``client_key`` retries safe."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import volume_from_bytes
from napari_uqseg.core.reviewed import check_reviewed_mask
from napari_uqseg.core.volume import Volume, check_label_array


def decode_label(label: bytes | str, prediction: dict[str, Any], image: Volume) -> np.ndarray:
    """The corrected label map of ``prediction`` as uint8 ``(I, J, K)`` on the grid of ``image``.

    Parameters
    ----------
    label : bytes or str
        NIfTI bytes, or their base64 text as JSON carries them.
    prediction : dict
        The prediction's ledger row (its ``summary["labels"]`` bounds the label values when known).
    image : Volume
        The predicted image: the label must have its shape and affine.

    Raises
    ------
    InputError
        Bad base64 or NIfTI, more voxels than the image, non-integer, negative, empty, out-of-class or
        > 255 labels, another shape or affine.
    """
    img = _nifti(label, "label", image)
    array = np.asanyarray(img.dataobj)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    array = check_label_array(array, "label", len(prediction["summary"]["labels"]) or None)
    if array.dtype != np.uint8:  # corrections are stored as uint8: 256 must not wrap to 0
        raise InputError("label", f"label {int(array.max())} is above 255, the largest a correction can hold")
    if array.shape != image.shape:
        raise InputError("label", f"shape {array.shape} differs from the image shape {image.shape}")
    return array


def _nifti(payload: bytes | str, name: str, image: Volume):
    """The NIfTI image of ``payload`` (bytes or base64 text), at most as many voxels as ``image`` and on its affine."""
    if isinstance(payload, str):
        try:
            payload = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(name, "not valid base64") from exc
    img = volume_from_bytes(payload, name, max_voxels=int(np.prod(image.shape)))
    if not np.allclose(img.affine, image.affine, atol=1e-3):
        raise InputError(name, "affine differs from the image affine")
    return img


def decode_reviewed(reviewed: bytes | str, image: Volume) -> np.ndarray:
    """The reviewed mask sent with a correction as bool ``(I, J, K)`` on the grid of ``image``.

    Raises
    ------
    InputError
        Bad base64 or NIfTI, another shape or affine, values other than 0/1, or no reviewed voxel.
    """
    img = _nifti(reviewed, "reviewed", image)
    return check_reviewed_mask(np.asanyarray(img.dataobj), image.shape)


def payload_sha(image_sha: str, label: np.ndarray, reviewed: np.ndarray | None = None) -> str:
    """sha256 of what a correction says (its image, label voxels and reviewed mask): equal for a faithful retry."""
    digest = hashlib.sha256(image_sha.encode())
    digest.update(str(label.shape).encode())
    digest.update(np.ascontiguousarray(label, dtype=np.uint8).tobytes())
    if reviewed is not None:  # without a mask the hash is what it was before masks existed
        digest.update(b"reviewed")
        digest.update(np.packbits(np.ascontiguousarray(reviewed, dtype=bool)).tobytes())
    return digest.hexdigest()
