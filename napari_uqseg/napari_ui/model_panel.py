"""The "Get a model" panel: from "no model" to "predicting" without leaving napari.

Three ways, each a background task on the connected backend (local or remote): use the starter model
shipped in the package, "Import model..." (a model folder, picked by its ``model.json``, or a ``.tar.gz``
archive), and "Train a model..." from a labelled dataset folder or from the open image and label layers
(a train job with progress, ETA and cancel; the member check's warnings are shown when it ends).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
)

from napari_uqseg.client.backend import Backend
from napari_uqseg.client.errors import describe_error
from napari_uqseg.client.job_wait import JobWatch
from napari_uqseg.client.model_setup import (
    TRAIN_ITERATIONS,
    TRAIN_METHODS,
    model_name_from,
    start_training,
    training_outcome,
    use_starter,
)
from napari_uqseg.core.dataset_folder import write_dataset
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.records import JobStatus, ModelSummary
from napari_uqseg.napari_ui.connection import set_status
from napari_uqseg.napari_ui.jobs_panel import POLL_INTERVAL_S, format_eta
from napari_uqseg.napari_ui.layers import layer_to_volume
from napari_uqseg.napari_ui.workers import run_generator, run_task

SOURCES = ("Dataset folder...", "Open image + label layers")


class ModelPanel(QGroupBox):
    """Starter model, import and training; emits ``models_changed(models, (name, version))`` when one is ready."""

    models_changed = Signal(object, object)

    def __init__(self, get_backend: Callable[[], Backend | None], viewer: Any) -> None:
        super().__init__("Get a model")
        self._get_backend, self.viewer = get_backend, viewer
        self.worker: Any = None
        self.job: JobStatus | None = None
        self.starter_button = QPushButton("Use the starter model")
        self.starter_button.setToolTip("Brain grey/white matter on T1 MRI, shipped with napari-uqseg (see its card)")
        self.starter_button.clicked.connect(self.use_starter)
        self.import_button = QPushButton("Import model...")
        self.import_button.clicked.connect(self._pick_import)
        self.source = QComboBox()
        self.source.addItems(SOURCES)
        self.image_layer, self.label_layer = QComboBox(), QComboBox()
        self.method = QComboBox()
        self.method.addItems(TRAIN_METHODS)
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 100_000)
        self.iterations.setValue(TRAIN_ITERATIONS)
        self.name = QLineEdit("my-model")
        self.train_button = QPushButton("Train a model...")
        self.train_button.clicked.connect(self._pick_train)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_training)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("No model yet? Use the starter model, import one, or train one.")
        self.status.setWordWrap(True)
        form = QFormLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.starter_button)
        row.addWidget(self.import_button)
        form.addRow(row)
        for label, widget in [("Train from", self.source), ("Image", self.image_layer), ("Labels", self.label_layer)]:
            form.addRow(label, widget)
        for label, widget in [("Method", self.method), ("Steps", self.iterations), ("Name", self.name)]:
            form.addRow(label, widget)
        train_row = QHBoxLayout()
        train_row.addWidget(self.train_button)
        train_row.addWidget(self.cancel_button)
        form.addRow(train_row)
        form.addRow(self.progress)
        form.addRow(self.status)
        viewer.layers.events.inserted.connect(self._layers_changed)
        viewer.layers.events.removed.connect(self._layers_changed)
        self._layers_changed()

    # --- starter and import --------------------------------------------------------------------------------
    def use_starter(self) -> None:
        """Register the shipped starter model (``brain-starter``) on the backend and select it."""
        self._register(use_starter, "The starter model")

    def import_model(self, path: str, name: str | None = None) -> None:
        """Register a model folder or archive as the next version of ``name`` (default: from the path)."""
        name = name or model_name_from(path)
        self._register(lambda backend: backend.import_model(name, path), name)

    def _register(self, call: Callable[[Backend], ModelSummary], what: str) -> None:
        try:
            backend = self._backend()
        except InputError as exc:
            set_status(self.status, describe_error(exc, "Import"), error=True)
            return
        set_status(self.status, f"Importing {what}…")

        def work(progress: Any) -> tuple[list[ModelSummary], tuple[str, str]]:
            summary = call(backend)
            return backend.models(), (summary.name, summary.versions[-1].version)

        self.worker = run_task(
            work,
            on_returned=lambda out: self._ready(*out, f"Imported {out[1][0]} {out[1][1]}: ready to predict."),
            on_errored=lambda exc: set_status(self.status, describe_error(exc, "Import"), error=True),
            on_finished=self._idle,
        )

    def _pick_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import model: pick its model.json or a .tar.gz archive", "", "Models (model.json *.tar.gz *.tgz)"
        )
        if path:
            self.import_model(str(Path(path).parent) if Path(path).name == "model.json" else path)

    # --- training ------------------------------------------------------------------------------------------
    def _pick_train(self) -> None:
        if self.source.currentIndex() == 1:
            self.train_from_layers(self.image_layer.currentText(), self.label_layer.currentText())
            return
        folder = QFileDialog.getExistingDirectory(self, "Labelled dataset folder (dataset.json, imagesTr, labelsTr)")
        if folder:
            self.train_from_folder(folder)

    def train_from_layers(self, image_name: str, label_name: str) -> None:
        """Train on the open image layer and its label layer (written as a one-case dataset)."""
        layers = self.viewer.layers
        if image_name not in layers or label_name not in layers:
            set_status(self.status, "Training: choose an open image layer and a label layer drawn on it.", error=True)
            return
        image, label = layer_to_volume(layers[image_name]), layer_to_volume(layers[label_name])
        tmp = Path(tempfile.mkdtemp(prefix="uqseg-train-"))
        self._train(lambda: write_dataset(tmp / "dataset", [(image, label)], name=self.name.text()))

    def train_from_folder(self, folder: str) -> None:
        """Train on a labelled MSD-layout dataset folder."""
        self._train(lambda: Path(folder))

    def _train(self, dataset: Callable[[], Path]) -> None:
        if self.worker is not None:
            return
        try:
            backend = self._backend()
        except InputError as exc:
            set_status(self.status, describe_error(exc, "Training"), error=True)
            return
        name, method, steps = self.name.text().strip(), self.method.currentText(), int(self.iterations.value())
        self.job, self._cancelling = None, False
        self.train_button.setEnabled(False)
        self.progress.setValue(0)
        set_status(self.status, "Sending the labelled data…")

        def poll() -> Generator[JobStatus, None, tuple[JobStatus, list[ModelSummary]]]:
            status = start_training(backend, name, dataset(), method, steps)
            yield status
            watch = JobWatch(backend, status.id, status)
            yield from watch.follow(
                POLL_INTERVAL_S, should_stop=lambda: self.worker is not None and self.worker.abort_requested
            )
            status = watch.status
            return status, backend.models() if status.state == "succeeded" else []

        self.worker = run_generator(
            poll,
            on_yielded=self._show_job,
            on_returned=self._trained,
            on_errored=lambda exc: set_status(self.status, describe_error(exc, "Training"), error=True),
            on_finished=self._idle,
        )

    def cancel_training(self) -> None:
        """Ask the backend to stop the train job; polling goes on until it reports it stopped."""
        backend = self._get_backend()
        if self.job is None or self.job.finished or backend is None:
            return
        job_id, self._cancelling = self.job.id, True
        self.cancel_button.setEnabled(False)
        set_status(self.status, "Cancelling training…")
        run_task(
            lambda progress: backend.cancel_job(job_id),
            on_errored=lambda exc: set_status(self.status, describe_error(exc, "Cancel"), error=True),
        )

    def _show_job(self, status: JobStatus) -> None:
        self.job = status
        self.cancel_button.setEnabled(not status.finished and not self._cancelling)
        self.progress.setValue(round(1000 * min(max(status.progress, 0.0), 1.0)))
        if not self._cancelling or status.finished:
            eta = format_eta(status.eta_s) if not status.finished else ""
            set_status(self.status, f"Training {status.state}: {status.message}  {eta}".strip())

    def _trained(self, ended: tuple[JobStatus, list[ModelSummary]]) -> None:
        status, models = ended
        self._show_job(status)
        message, warn = training_outcome(status, models)
        if status.state == "succeeded":
            self._ready(models, (status.result["model"], status.result["version"]), message, warn)
        else:
            set_status(self.status, message, error=warn)

    # --- internals -----------------------------------------------------------------------------------------
    def _ready(self, models: list[ModelSummary], chosen: tuple[str, str], message: str, warn: bool = False) -> None:
        self.progress.setValue(1000)
        set_status(self.status, message, error=warn)
        self.models_changed.emit(models, chosen)

    def _idle(self) -> None:
        self.worker = None
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _backend(self) -> Backend:
        backend = self._get_backend()
        if backend is None:
            raise InputError("connection", "not connected; choose Local or Remote and press Connect")
        return backend

    def _layers_changed(self, *_: Any) -> None:
        from napari.layers import Image, Labels

        for combo, kind in ((self.image_layer, Image), (self.label_layer, Labels)):
            chosen = combo.currentText()
            combo.clear()
            combo.addItems([x.name for x in self.viewer.layers if isinstance(x, kind) and "uqseg" not in x.metadata])
            if chosen:
                combo.setCurrentText(chosen)
