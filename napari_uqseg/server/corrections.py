"""Validation of a submitted corrected label map, and the payload hash that makes ``client_key`` retries safe."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import volume_from_bytes
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
    if isinstance(label, str):
        try:
            label = base64.b64decode(label, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError("label", "not valid base64") from exc
    img = volume_from_bytes(label, "label", max_voxels=int(np.prod(image.shape)))
    array = np.asanyarray(img.dataobj)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    array = check_label_array(array, "label", len(prediction["summary"]["labels"]) or None)
    if array.dtype != np.uint8:  # corrections are stored as uint8: 256 must not wrap to 0
        raise InputError("label", f"label {int(array.max())} is above 255, the largest a correction can hold")
    if array.shape != image.shape:
        raise InputError("label", f"shape {array.shape} differs from the image shape {image.shape}")
    if not np.allclose(img.affine, image.affine, atol=1e-3):
        raise InputError("label", "affine differs from the image affine")
    return array


def payload_sha(image_sha: str, label: np.ndarray) -> str:
    """sha256 of what a correction says (its image and label voxels): equal for a faithful retry."""
    digest = hashlib.sha256(image_sha.encode())
    digest.update(str(label.shape).encode())
    digest.update(np.ascontiguousarray(label, dtype=np.uint8).tobytes())
    return digest.hexdigest()
