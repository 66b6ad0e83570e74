"""Volumes with calibrated intervals and conformal contours for Slicer, without Slicer (client + core only).

The server reports each structure's volume (with conformal intervals when the model version was calibrated by
``uqseg conformal``) and the thresholds of its outer/inner conformal masks; here they become the rows of a
segment-statistics-like table and ``(K, J, I)`` label arrays of the contours on the input's grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_uqseg.core.conformal_masks import conformal_masks
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume
from napari_uqseg.core.volume_intervals import format_interval
from napari_uqseg.core.wire import LEVELS, TTA_MODES

from .geometry import kji_from_volume

#: columns of the volume table, as Slicer's Segment Statistics names its own
TABLE_COLUMNS = ("Segment", "Volume [mL]", "80% interval [mL]", "90% interval [mL]", "95% interval [mL]")
CONTOUR_KINDS = ("outer", "inner")


@dataclass
class CalibratedOutputs:
    """What a prediction says beyond mask and maps: volumes, the contours' guarantee and their label arrays.

    Attributes
    ----------
    tta : str
        Test-time augmentation mode of the prediction.
    volumes : dict
        ``core.volume_intervals.describe_volumes`` output (empty if the server reports none).
    risk_text : str
        The contours' guarantee in plain words ("" when the model version is not calibrated).
    contours_kji : dict of str to np.ndarray
        ``"outer"``/``"inner"`` -> ``(K, J, I)`` uint8 labels (class of each voxel inside that mask).
    """

    tta: str
    volumes: dict[str, Any]
    risk_text: str
    contours_kji: dict[str, np.ndarray]


def calibrated_outputs(info: dict[str, Any], probabilities: Volume, shape_kji: tuple[int, ...]) -> CalibratedOutputs:
    """Read a prediction's ``info`` and draw its contours from its ``(C, I, J, K)`` probabilities."""
    masks_cal = info.get("conformal_masks")
    contours: dict[str, np.ndarray] = {}
    if masks_cal:
        masks = conformal_masks(probabilities.array, masks_cal, tolerance=0.5 / LEVELS)
        for kind in CONTOUR_KINDS:
            labels = np.zeros(probabilities.array.shape[1:], np.uint8)
            for c in sorted(masks, key=int):
                if kind in masks[c]:
                    labels[masks[c][kind]] = int(c)
            volume = Volume(labels, probabilities.affine)
            contours[kind] = kji_from_volume(volume, probabilities.affine, shape_kji, f"{kind} contour").astype(
                np.uint8, copy=False
            )
    return CalibratedOutputs(
        tta=str(info.get("tta", "none")),
        volumes=dict(info.get("volumes") or {}),
        risk_text=str(masks_cal["text"]) if masks_cal else "",
        contours_kji=contours,
    )


def volume_table_rows(outputs: CalibratedOutputs, class_names: dict[int, str]) -> list[tuple[str, ...]]:
    """One row per structure under :data:`TABLE_COLUMNS` (intervals ``"lo-hi"``, or ``"not calibrated"``)."""
    rows = []
    for c, entry in outputs.volumes.get("classes", {}).items():
        intervals = entry.get("intervals", {})
        cells = []
        for level in ("0.8", "0.9", "0.95"):
            cells.append(format_interval(intervals.get(level)))
        rows.append((class_names.get(int(c), f"class_{c}"), f"{entry['volume']:.2f}", *cells))
    return rows


def predict_options(tta: str | None) -> dict[str, Any]:
    """Prediction options for the TTA mode chosen in the panel (``{}`` for none); an unknown mode is an error."""
    mode = tta or "none"
    if mode not in TTA_MODES:
        raise InputError("test-time augmentation", f"unknown mode {mode!r}; known: {list(TTA_MODES)}")
    return {} if mode == "none" else {"tta": mode}


def summary_text(outputs: CalibratedOutputs | None) -> str:
    """The panel's line under the volume table: TTA used, and the contours' guarantee or why there is none."""
    if outputs is None:
        return "Segment to see each structure's volume (mL) with its calibrated interval."
    if outputs.risk_text:
        return f"TTA: {outputs.tta}. {outputs.risk_text}"
    return (
        f"TTA: {outputs.tta}. This model version is not calibrated for it: volumes without intervals and no "
        "conformal contours (`uqseg conformal` calibrates it)."
    )
