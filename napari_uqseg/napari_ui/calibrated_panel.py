"""napari panel "Volumes and contours": TTA choice, volumes with calibrated intervals, conformal contours.

The server reports, per prediction, each structure's volume (with conformal intervals when the model
version was calibrated by ``uqseg conformal``) and the outer/inner thresholds of its conformal masks. The
viewer draws the masks from the probabilities it already holds, as contour-only label layers around the
mask, and states the guarantee in plain words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel

from napari_uqseg.core.conformal_masks import conformal_masks
from napari_uqseg.core.volume_intervals import volume_text
from napari_uqseg.core.wire import LEVELS, TTA_MODES
from napari_uqseg.core.worklist import volume_intervals, volume_summary
from napari_uqseg.napari_ui.layers import layer_kwargs

if TYPE_CHECKING:
    import napari

    from napari_uqseg.client.backend import PredictionResult

#: contour layers per prediction: kind -> (layer-name suffix, napari label colour of class 1 / 2 ...)
CONTOUR_KINDS = {"outer": "outer contour", "inner": "inner contour"}
TTA_TITLES = {
    "none": "none",
    "flips": "flips (one per axis; averages the mirrored predictions)",
    "flips+intensity": "flips + contrast x1.1 / x0.9",
}
#: stored probabilities are uint8 levels: masks are widened (outer) or narrowed (inner) by half a level
ROUNDING = 0.5 / LEVELS


def summary_lines(result: PredictionResult) -> list[str]:
    """The panel's text for one prediction: TTA, each structure's volume, the contours' guarantee."""
    info = result.prediction.info
    labels = {str(k): str(v) for k, v in info.get("labels", {}).items()}
    lines = [f"TTA: {info.get('tta', 'none')}; {info.get('samples', 1)} samples per voxel"]
    volumes = info.get("volumes")
    lines += volume_text(volumes, labels) if volumes else ["(this server reports no volumes)"]
    masks = info.get("conformal_masks")
    lines.append(masks["text"] if masks else "No conformal contours: this model version is not calibrated.")
    return lines


def case_note(result: PredictionResult) -> str:
    """The case list's line for a prediction: each structure's volume with its 90 % interval (mL) if calibrated."""
    info = result.prediction.info
    labels = {str(k): str(v) for k, v in info.get("labels", {}).items()}
    volumes = info.get("volumes") or {}
    volumes_ml = {labels.get(c, f"class {c}"): float(e["volume"]) for c, e in volumes.get("classes", {}).items()}
    return volume_summary(volumes_ml, volume_intervals(volumes, labels))


def add_contour_layers(viewer: napari.Viewer, image_name: str, result: PredictionResult) -> dict[str, Any]:
    """Add (replacing earlier ones) the outer and inner conformal contours of a prediction; ``{kind: layer}``."""
    calibration = result.prediction.info.get("conformal_masks")
    for suffix in CONTOUR_KINDS.values():
        if f"{image_name} {suffix}" in viewer.layers:
            viewer.layers.remove(f"{image_name} {suffix}")
    if not calibration:
        return {}
    probabilities = result.prediction.probabilities
    masks = conformal_masks(probabilities.array, calibration, tolerance=ROUNDING)
    place = layer_kwargs(result.prediction.mask)
    layers = {}
    for kind, suffix in CONTOUR_KINDS.items():
        data = np.zeros(probabilities.array.shape[1:], np.uint8)
        for c in sorted(masks, key=int):
            if kind in masks[c]:
                data[masks[c][kind]] = int(c)
        meta = {"uqseg": {"image": image_name, "contour": kind, "risk": calibration["risk"]}}
        layer = viewer.add_labels(
            data, name=f"{image_name} {suffix}", opacity=1.0, **{**place, "metadata": {**place["metadata"], **meta}}
        )
        layer.contour = 1
        layer.editable = False
        layers[kind] = layer
    return layers


class CalibratedPanel(QGroupBox):
    """TTA option for the next prediction; volumes, intervals and conformal contours of the current case."""

    def __init__(self) -> None:
        super().__init__("Volumes and contours")
        self.tta_combo = QComboBox()
        for mode in TTA_MODES:
            self.tta_combo.addItem(TTA_TITLES.get(mode, mode), mode)
        self.show_contours = QCheckBox("Show outer / inner contours")
        self.show_contours.setChecked(True)
        self.show_contours.toggled.connect(self._toggle)
        self.text = QLabel("Predict to see each structure's volume with its calibrated interval.")
        self.text.setWordWrap(True)
        self.layers: dict[str, Any] = {}
        form = QFormLayout(self)
        form.addRow("Test-time augmentation", self.tta_combo)
        form.addRow(self.show_contours)
        form.addRow(self.text)

    def predict_options(self) -> dict[str, Any]:
        """Prediction options this panel sets (``{"tta": mode}`` unless none)."""
        mode = self.tta_combo.currentData()
        return {} if mode == "none" else {"tta": mode}

    def show_result(self, viewer: napari.Viewer, image_name: str, result: PredictionResult) -> None:
        """Draw the contours of a new prediction and show its volumes."""
        self.layers = add_contour_layers(viewer, image_name, result)
        self._toggle(self.show_contours.isChecked())
        self.show_text(result)

    def show_text(self, result: PredictionResult | None) -> None:
        self.text.setText("\n".join(summary_lines(result)) if result is not None else "")

    def _toggle(self, visible: bool) -> None:
        for layer in self.layers.values():
            layer.visible = visible
