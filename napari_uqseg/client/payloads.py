"""Payloads of the v1 protocol on the client side: NIfTI bytes out, ``PredictionResult`` in (numpy only)."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from napari_uqseg.client.backend import PredictionResult
from napari_uqseg.core.nifti_io import float_map_from_bytes, nifti_bytes, volume_from_bytes
from napari_uqseg.core.records import Prediction
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.reviewed import check_reviewed_mask
from napari_uqseg.core.volume import Volume, check_image_array, check_label_array


def image_payload(image: Volume, compress: bool) -> bytes:
    """NIfTI-1 bytes of a validated float32 image (gzip when ``compress``: worth it off loopback)."""
    array = check_image_array(image.array, "image")
    return nifti_bytes(Volume(array, image.affine), dtype=np.float32, compress=compress)


def label_payload(label: Volume) -> str:
    """Base64 text of a validated uint8 label map as gzip NIfTI (corrections travel inside JSON)."""
    array = check_label_array(label.array, "label")
    return base64.b64encode(nifti_bytes(Volume(array, label.affine), dtype=np.uint8)).decode("ascii")


def reviewed_payload(reviewed: Volume) -> str:
    """Base64 text of a reviewed mask (``core.reviewed``) as gzip NIfTI 0/1 uint8, checked on its own grid."""
    mask = check_reviewed_mask(reviewed.array, reviewed.shape)
    return base64.b64encode(nifti_bytes(Volume(mask.astype(np.uint8), reviewed.affine), dtype=np.uint8)).decode("ascii")


def review_from_wire(d: dict[str, Any]) -> ReviewRanking:
    """``ReviewRanking`` from JSON, where non-finite floats travel as ``null``."""
    fixed = {**d, "threshold": math.nan if d.get("threshold") is None else d["threshold"]}
    return ReviewRanking.from_dict(fixed)


def mask_from_bytes(data: bytes) -> Volume:
    img = volume_from_bytes(data, "mask output")
    return Volume(np.asarray(img.dataobj).astype(np.uint8), img.affine)


def decode_output(name: str, data: bytes) -> Volume:
    """One downloaded output: the mask as uint8, any other as float32 (probabilities stay ``(I, J, K, C)``)."""
    return mask_from_bytes(data) if name == "mask" else float_map_from_bytes(data, f"{name} output")


def prediction_from_wire(summary: dict[str, Any], outputs: dict[str, bytes]) -> PredictionResult:
    """Assemble a ``PredictionResult`` from the prediction JSON and its downloaded NIfTI outputs.

    ``outputs["probabilities"]`` is ``(I, J, K, C)`` in NIfTI order; the result holds ``(C, I, J, K)``.
    """
    return prediction_from_volumes(summary, {name: decode_output(name, data) for name, data in outputs.items()})


def prediction_from_volumes(summary: dict[str, Any], volumes: dict[str, Volume]) -> PredictionResult:
    """``prediction_from_wire`` for outputs already decoded (:func:`decode_output`) or pasted to full size."""
    mask, probs = volumes["mask"], volumes["probabilities"]
    probabilities = Volume(np.ascontiguousarray(np.moveaxis(probs.array, -1, 0)), probs.affine)
    maps = {name: volume for name, volume in volumes.items() if name not in ("mask", "probabilities")}
    info = {
        **summary.get("info", {}),
        "model": summary["model"],
        "version": summary["version"],
        "labels": summary.get("labels", {}),
    }
    prediction = Prediction(mask, probabilities, maps, summary["method"], dict(summary.get("timings", {})), info)
    return PredictionResult(
        id=summary["id"],
        prediction=prediction,
        review=review_from_wire(summary["review"]),
        model=summary["model"],
        version=summary["version"],
        timings=dict(summary.get("timings", {})),
    )
