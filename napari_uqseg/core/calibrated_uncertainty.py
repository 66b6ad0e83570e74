"""What a prediction reports from its model's conformal calibration: volumes with intervals, mask thresholds.

A model version's calibration (written by ``uqseg conformal``, kept as ``uq_calibration.json`` beside its
card) holds one entry per TTA mode, because TTA changes the probabilities the calibration was fitted on::

    {"format": 1, "entries": {"none": ENTRY, "flips": ENTRY}}
    ENTRY = {"cases": [...], "volume_source": "samples",
             "volume": {"bernoulli": {"1": {"0.9": q, ...}, ...}, "samples": {...}},
             "masks": {"risk": 0.05, "classes": {"1": {"outer": t, "inner": t}, ...}}}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_uqseg.core.conformal_masks import risk_text
from napari_uqseg.core.volume_intervals import describe_volumes, volume_scales, voxel_volume_ml

CALIBRATION_FILE = "uq_calibration.json"
CALIBRATION_FORMAT = 1


def calibration_entry(calibration: dict[str, Any] | None, tta: str) -> dict[str, Any] | None:
    """The entry of TTA mode ``tta`` (``"none"`` without TTA), or ``None`` if uncalibrated for it."""
    return ((calibration or {}).get("entries") or {}).get(tta)


def prediction_uncertainty_summary(
    mean_prob: np.ndarray,
    mean_sq_prob: np.ndarray | None,
    n_samples: int,
    mask: np.ndarray,
    affine: np.ndarray,
    entry: dict[str, Any] | None,
) -> dict[str, Any]:
    """``{"volumes": ..., "conformal_masks": ...}`` for one prediction (JSON-able).

    Parameters
    ----------
    mean_prob, mean_sq_prob : np.ndarray
        ``(C, *S)`` pooled statistics of the prediction (``mean_sq_prob`` may be ``None``).
    n_samples : int
        Samples behind them.
    mask : np.ndarray
        ``(*S)`` predicted labels.
    affine : np.ndarray
        Voxel-to-mm affine (voxel volume).
    entry : dict or None
        The calibration entry for this prediction's TTA mode; ``None``: volumes without intervals and no
        conformal masks.
    """
    return summary_from_scales(volume_scales(mean_prob, mean_sq_prob, n_samples), mask, affine, entry)


def summary_from_scales(
    scales: dict[str, np.ndarray], mask: np.ndarray, affine: np.ndarray, entry: dict[str, Any] | None
) -> dict[str, Any]:
    """``prediction_uncertainty_summary`` from the volume scales (``core.volume_intervals.volume_scales``)."""
    volume_cal = None
    if entry is not None:
        source = entry.get("volume_source", "bernoulli")
        source = source if source in scales else "bernoulli"
        volume_cal = {"source": source, "classes": entry.get("volume", {}).get(source, {})}
    summary: dict[str, Any] = {"volumes": describe_volumes(mask, scales, voxel_volume_ml(affine), volume_cal)}
    masks = (entry or {}).get("masks")
    if masks:
        summary["conformal_masks"] = {**masks, "text": risk_text(masks["risk"])}
    return summary
