"""The main dock widget: connect, predict with uncertainty, show the heatmap, review, correct and fine-tune."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from napari_uqseg.client.backend import Backend, PredictionResult
from napari_uqseg.client.errors import describe_error
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.records import MethodInfo, ModelSummary
from napari_uqseg.core.review_ranking import Region
from napari_uqseg.core.reviewed import reviewed_mask
from napari_uqseg.core.volume import Volume
from napari_uqseg.napari_ui.calibrated_panel import CalibratedPanel, case_note
from napari_uqseg.napari_ui.connection import ConnectionPanel, set_status
from napari_uqseg.napari_ui.jobs_panel import CorrectionSource, JobsPanel
from napari_uqseg.napari_ui.layers import (
    PredictionLayers,
    add_prediction_layers,
    focus_region,
    layer_to_volume,
    map_title,
    set_threshold,
    show_map,
)
from napari_uqseg.napari_ui.model_choice import method_cost, methods_of, version_items
from napari_uqseg.napari_ui.model_panel import ModelPanel
from napari_uqseg.napari_ui.orientation import follow_new_images, review_axis
from napari_uqseg.napari_ui.review_model import ReviewCursor
from napari_uqseg.napari_ui.review_panel import ReviewPanel
from napari_uqseg.napari_ui.settings import load_settings
from napari_uqseg.napari_ui.workers import run_task
from napari_uqseg.napari_ui.worklist_cases import WorklistCases

if TYPE_CHECKING:
    import napari


@dataclass
class CaseState:
    """One predicted image: the client result, its layers and its review cursor."""

    image: str
    result: PredictionResult
    layers: PredictionLayers
    cursor: ReviewCursor

    @property
    def n_classes(self) -> int:
        return int(self.result.prediction.probabilities.array.shape[0])


class SegmentWidget(QWidget):
    """Dock widget "Segment with uncertainty" (the npe2 widget command)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.backend: Backend | None = None
        self.models: dict[str, ModelSummary] = {}
        self.methods: dict[str, MethodInfo] = {}
        self.cases: dict[str, CaseState] = {}
        self.current: str | None = None
        self.predict_worker: Any = None
        self.capabilities: dict[str, Any] = {}

        self.connection = ConnectionPanel(load_settings())
        self.connection.connected.connect(self._connected)
        self.review = ReviewPanel(self._focus_region, self._focus_slice, self._review_changed)
        self.review.case_selected.connect(self.select_case)
        self.worklist = WorklistCases(self.viewer, lambda: self.backend, self._show_result, self._refresh_cases)
        self.review.layout().insertWidget(0, self.worklist)
        self.jobs = JobsPanel(lambda: self.backend, self._correction_source)
        self.jobs.version_switched.connect(self._version_switched)
        self.calibrated = CalibratedPanel()
        self.model_panel = ModelPanel(lambda: self.backend, self.viewer)  # starter, import, train
        self.model_panel.models_changed.connect(lambda models, chosen: self._set_models(models, select=chosen))

        inner = QWidget()
        column = QVBoxLayout(inner)
        column.addWidget(self.connection)
        column.addWidget(self.model_panel)
        column.addWidget(self._build_predict())
        column.addWidget(self._build_display())
        column.addWidget(self.calibrated)
        column.addWidget(self.review)
        column.addWidget(self.jobs)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.setMinimumWidth(400)

        events = self.viewer.layers.events
        for event in (events.inserted, events.removed):
            event.connect(self._layers_changed)
        self._layers_changed()
        follow_new_images(self.viewer)  # slider on the acquisition slices, anatomical directions shown

    # --- layout --------------------------------------------------------------------------------------------
    def _build_predict(self) -> QGroupBox:
        box = QGroupBox("Predict")
        self.image_combo = QComboBox()
        self.model_combo = QComboBox()
        self.model_combo.currentTextChanged.connect(self._model_changed)
        self.method_combo = QComboBox()
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.version_combo = QComboBox()
        self.cost_label = QLabel("")
        self.cost_label.setWordWrap(True)
        self.predict_button = QPushButton("Predict")
        self.predict_button.clicked.connect(self.predict)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_prediction)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.predict_status = QLabel("Connect, choose an image and a model, then Predict.")
        self.predict_status.setWordWrap(True)
        form = QFormLayout(box)
        form.addRow("Image", self.image_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("Method", self.method_combo)
        form.addRow("Version", self.version_combo)
        form.addRow(self.cost_label)
        row = QHBoxLayout()
        row.addWidget(self.predict_button)
        row.addWidget(self.cancel_button)
        form.addRow(row)
        form.addRow(self.progress)
        form.addRow(self.predict_status)
        return box

    def _build_display(self) -> QGroupBox:
        box = QGroupBox("Uncertainty display")
        self.map_combo = QComboBox()
        self.map_combo.currentIndexChanged.connect(self._map_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.valueChanged.connect(self._threshold_changed)
        form = QFormLayout(box)
        form.addRow("Map", self.map_combo)
        form.addRow("Opacity", self.opacity)
        form.addRow("Threshold", self.threshold)
        return box

    # --- connection and choices ----------------------------------------------------------------------------
    def _connected(self, backend: Backend, caps: dict) -> None:
        self.backend = backend
        self.capabilities = caps
        self.methods = {m["name"]: MethodInfo.from_dict(m) for m in caps.get("methods", [])}
        self._set_models([ModelSummary.from_dict(m) for m in caps.get("models", [])])

    def _set_models(self, models: list[ModelSummary], select: tuple[str, str] | None = None) -> None:
        self.models = {m.name: m for m in models}
        remembered = self.connection.current_settings().model
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(sorted(self.models))
        self.model_combo.blockSignals(False)
        wanted = select[0] if select else remembered
        if wanted in self.models:
            self.model_combo.setCurrentText(wanted)
        self._model_changed(self.model_combo.currentText())
        if select:
            method = self.models[select[0]].method_of(select[1])
            self.method_combo.setCurrentIndex(max(self.method_combo.findData(method), 0))
            self.version_combo.setCurrentIndex(max(self.version_combo.findData(select[1]), 0))
        if not self.models:
            set_status(self.predict_status, "Connected, no model yet: see Get a model (starter, import, train).")

    def _model_changed(self, name: str) -> None:
        model = self.models.get(name)
        self.method_combo.blockSignals(True)
        self.method_combo.clear()
        for method in methods_of(model) if model is not None else []:
            self.method_combo.addItem(method, method)
        self.method_combo.blockSignals(False)
        self._method_changed()

    def _method_changed(self, *_: Any) -> None:
        model = self.models.get(self.model_combo.currentText())
        method = self.method_combo.currentData()
        self.version_combo.clear()
        if model is None or method is None:
            self.cost_label.setText("")
            return
        for text, version in version_items(model, method):
            self.version_combo.addItem(text, version)
        serving = self.version_combo.findData(model.serving)
        self.version_combo.setCurrentIndex(max(serving, 0))
        self.cost_label.setText(method_cost(self.methods.get(method), method))

    def _layers_changed(self, *_: Any) -> None:
        from napari.layers import Image

        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image) and not _is_ours(layer)]
        chosen = self.image_combo.currentText()
        self.image_combo.clear()
        self.image_combo.addItems(names)
        if chosen in names:
            self.image_combo.setCurrentText(chosen)
        for gone in set(self.cases) - set(names):
            del self.cases[gone]
        self._refresh_cases()

    # --- prediction ----------------------------------------------------------------------------------------
    def predict(self) -> None:
        """Predict the chosen image in a worker; the result layers replace earlier ones of that image."""
        if self.predict_worker is not None:
            return
        try:
            backend, image_name, volume = self._predict_inputs()
        except InputError as exc:
            set_status(self.predict_status, describe_error(exc, "Prediction"), error=True)
            return
        model, version = self.model_combo.currentText(), self.version_combo.currentData()
        options = {"axis": review_axis(volume.affine, volume.array.ndim)}  # review slices follow the slider
        self.connection.remember(model=model, method=self.method_combo.currentData() or "")
        set_status(self.predict_status, f"Predicting {image_name} with {model} {version}…")
        self.progress.setValue(0)
        self.predict_button.setEnabled(False)
        self.cancel_button.setEnabled(True)

        def finished() -> None:
            self.predict_worker = None
            self.predict_button.setEnabled(True)
            self.cancel_button.setEnabled(False)

        options = {**options, **self.calibrated.predict_options()}
        self.predict_worker = run_task(
            lambda progress: backend.predict(volume, model, version, options=options, progress=progress),
            on_progress=self._predict_progress,
            on_returned=lambda result: self._show_result(image_name, result),
            on_errored=lambda exc: set_status(self.predict_status, describe_error(exc, "Prediction"), error=True),
            on_finished=finished,
        )

    def cancel_prediction(self) -> None:
        """Stop the running prediction at its next progress report."""
        if self.predict_worker is not None:
            self.predict_worker.quit()
            self.cancel_button.setEnabled(False)
            set_status(self.predict_status, "Cancelling…")

    def _predict_inputs(self) -> tuple[Backend, str, Any]:
        if self.backend is None:
            raise InputError("connection", "not connected; choose Local or Remote and press Connect")
        name = self.image_combo.currentText()
        if not name or name not in self.viewer.layers:
            raise InputError("image", "open an image first (File > Open, or File > Open Sample > napari-uqseg)")
        if not self.model_combo.currentText() or self.version_combo.currentData() is None:
            raise InputError("model", "no trained model is available on this connection")
        layer = self.viewer.layers[name]
        if getattr(layer, "rgb", False) or layer.ndim not in (2, 3):
            raise InputError(name, f"expected a 2-D or 3-D single-channel image, got {layer.ndim} dimensions")
        volume = layer_to_volume(layer)
        limit = dict(self.capabilities.get("limits", {})).get("max_voxels")
        if limit and volume.array.size > int(limit):
            raise InputError(name, f"image too large: {volume.array.size:,} voxels, the backend accepts {int(limit):,}")
        return self.backend, name, volume

    def _predict_progress(self, done: float, total: float, message: str) -> None:
        if total > 0:
            self.progress.setValue(round(1000 * min(done / total, 1.0)))
        if message:
            set_status(self.predict_status, message)

    def _show_result(self, image_name: str, result: PredictionResult) -> None:
        maps = result.prediction.maps
        first = result.review.map_name if result.review.map_name in maps else next(iter(maps))
        layers = add_prediction_layers(self.viewer, image_name, result, first)
        self.cases[image_name] = CaseState(image_name, result, layers, ReviewCursor(result.review))
        self.calibrated.show_result(self.viewer, image_name, result)
        self.progress.setValue(1000)
        seconds = sum(result.timings.values()) if result.timings else float("nan")
        took = f" in {seconds:.1f} s" if math.isfinite(seconds) else ""
        set_status(self.predict_status, f"Done{took}: {len(result.review.regions)} uncertain regions to review.")
        self.select_case(image_name)

    # --- cases, display and review -------------------------------------------------------------------------
    def select_case(self, name: str) -> None:
        """Make ``name`` the current case: its cursor in the review panel, its maps in the display switch."""
        if name not in self.cases and self.worklist.has(name):
            return self.worklist.open_case(name)  # loads image and outputs, then comes back here
        self.current = name if name in self.cases else None
        if name in [self.image_combo.itemText(i) for i in range(self.image_combo.count())]:
            self.image_combo.setCurrentText(name)
        case = self.cases.get(name)
        self.map_combo.blockSignals(True)
        self.map_combo.clear()
        if case is not None:
            for map_name in case.result.prediction.maps:
                self.map_combo.addItem(map_title(map_name), map_name)
            self.map_combo.setCurrentIndex(max(self.map_combo.findData(case.layers.heatmap.metadata.get("map")), 0))
        self.map_combo.blockSignals(False)
        self.review.set_cursor(case.cursor if case else None)
        self.calibrated.show_text(case.result if case else None)
        self._refresh_cases()

    def _refresh_cases(self) -> None:
        names = [self.image_combo.itemText(i) for i in range(self.image_combo.count())]
        scores = {n: self.cases[n].result.review.case_score if n in self.cases else float("nan") for n in names}
        scores = {**self.worklist.scores(), **scores} if hasattr(self, "worklist") else scores
        notes = {n: case_note(c.result) for n, c in self.cases.items()}  # volumes with intervals (mL)
        notes = {**notes, **self.worklist.notes()} if hasattr(self, "worklist") else notes
        self.review.set_cases(scores, self.current, notes)

    def _case(self) -> CaseState | None:
        return self.cases.get(self.current) if self.current else None

    def _map_changed(self, *_: Any) -> None:
        case, map_name = self._case(), self.map_combo.currentData()
        if case is not None and map_name:
            show_map(case.layers.heatmap, case.result.prediction.maps[map_name], map_name, case.n_classes)
            self._threshold_changed(self.threshold.value())

    def _opacity_changed(self, value: int) -> None:
        if (case := self._case()) is not None:
            case.layers.heatmap.opacity = value / 100

    def _threshold_changed(self, value: int) -> None:
        if (case := self._case()) is not None:
            set_threshold(case.layers.heatmap, value / 100 * float(case.layers.heatmap.contrast_limits_range[1]))

    def _focus_region(self, region: Region) -> None:
        if (case := self._case()) is not None:
            focus_region(self.viewer, case.layers.mask, region, case.cursor.ranking.axis, case.layers.outline)

    def _focus_slice(self, index: int) -> None:
        if (case := self._case()) is None:
            return
        axis = case.cursor.ranking.axis
        voxel = np.zeros(case.layers.mask.ndim)
        voxel[axis] = index
        self.viewer.dims.set_point(axis, float(case.layers.mask.data_to_world(voxel)[axis]))

    def _review_changed(self) -> None:
        if (case := self._case()) is not None:
            case.layers.mask.metadata["uqseg"]["review"] = case.cursor.ranking.to_dict()

    # --- corrections and versions --------------------------------------------------------------------------
    def _correction_source(self) -> CorrectionSource:
        case = self._case()
        if case is None:
            raise InputError("correction", "predict an image first; the correction is its edited mask")
        if case.layers.mask not in self.viewer.layers:
            raise InputError(case.layers.mask.name, "the mask layer was deleted; predict again")
        label = layer_to_volume(case.layers.mask)
        reviewed = reviewed_mask(case.cursor.ranking, label.array, case.result.prediction.mask.array)
        reviewed_volume = None if reviewed is None else Volume(reviewed, label.affine)
        result = case.result
        return CorrectionSource(result.id, label, case.cursor.ranking, result.model, result.version, reviewed_volume)

    def _version_switched(self, model: str, version: str) -> None:
        """Reload the model list (the new version is in it now) and select the new version."""
        if (backend := self.backend) is None:
            return
        run_task(
            lambda progress: backend.models(),
            on_returned=lambda models: self._set_models(models, select=(model, version)),
            on_errored=lambda exc: set_status(self.predict_status, describe_error(exc, "Model list"), error=True),
        )

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API name)
        for worker in (self.predict_worker, self.jobs.job_worker):
            if worker is not None:
                worker.quit()
        self.connection.close_backend()
        super().closeEvent(event)


def _is_ours(layer: Any) -> bool:
    """Heatmaps we added are Image layers too; they are not images to segment."""
    return "uqseg" in layer.metadata
