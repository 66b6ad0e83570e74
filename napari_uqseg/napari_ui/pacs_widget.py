"""Dock widget "From a PACS": pick a study and series from the server's PACS, predict it there, see the result.

The server fetches the series (WADO-RS), predicts it and stores the DICOM SEG and parametric maps back in the
PACS (STOW-RS); the widget then shows the series, the mask and the review map, placed by their affine.
Listings show study date, description and accession number, never the patient's name or ID.
"""

from __future__ import annotations

from typing import Any

import napari
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_uqseg.client.backend import Backend
from napari_uqseg.client.errors import describe_error
from napari_uqseg.core.nifti_io import float_map_from_bytes, volume_from_bytes
from napari_uqseg.core.volume import Volume
from napari_uqseg.napari_ui.connection import ConnectionPanel, set_status
from napari_uqseg.napari_ui.layers import layer_kwargs
from napari_uqseg.napari_ui.settings import load_settings
from napari_uqseg.napari_ui.workers import run_task

UID_ROLE = Qt.ItemDataRole.UserRole


def study_text(study: dict[str, Any]) -> str:
    """One line per study: date, description, accession number, modalities, series count (no patient identity)."""
    modalities = "/".join(study.get("ModalitiesInStudy") or [])
    parts = [study.get("StudyDate"), study.get("StudyDescription"), study.get("AccessionNumber"), modalities]
    count = study.get("NumberOfStudyRelatedSeries")
    return " · ".join(str(p) for p in parts if p) + (f" ({count} series)" if count is not None else "")


def series_text(series: dict[str, Any]) -> str:
    parts = [series.get("Modality"), series.get("SeriesNumber"), series.get("SeriesDescription")]
    count = series.get("NumberOfSeriesRelatedInstances")
    return " · ".join(str(p) for p in parts if p not in (None, "")) + (f" ({count} images)" if count else "")


class PacsWidget(QWidget):
    """Connection (to a ``uqseg serve --dicomweb`` server), study and series lists, model, predict button."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.backend: Backend | None = None
        self.worker: Any = None
        self.connection = ConnectionPanel(load_settings())
        self.connection.remote.setChecked(True)
        self.connection.connected.connect(self._connected)
        self.studies = QListWidget()
        self.studies.currentItemChanged.connect(self._study_chosen)
        self.series = QListWidget()
        self.model_combo = QComboBox()
        self.store = QCheckBox("Store SEG and maps in the PACS")
        self.store.setChecked(True)
        self.refresh_button = QPushButton("Refresh studies")
        self.refresh_button.clicked.connect(self.refresh)
        self.predict_button = QPushButton("Predict series")
        self.predict_button.clicked.connect(self.predict)
        self.status = QLabel("Connect to a server started with --dicomweb.")
        self.status.setWordWrap(True)
        box = QGroupBox("PACS")
        form = QFormLayout(box)
        form.addRow(self.refresh_button)
        form.addRow("Studies", self.studies)
        form.addRow("Series", self.series)
        form.addRow("Model", self.model_combo)
        form.addRow(self.store)
        form.addRow(self.predict_button)
        form.addRow(self.status)
        column = QVBoxLayout(self)
        column.addWidget(self.connection)
        column.addWidget(box)
        column.addStretch()

    def _connected(self, backend: Backend, caps: dict) -> None:
        self.backend = backend
        self.model_combo.clear()
        self.model_combo.addItems(sorted(m["name"] for m in caps.get("models", [])))
        self.refresh()

    def _run(self, what: str, work: Any, done: Any) -> None:
        """Run ``work()`` in a worker; ``done(result)`` on the GUI thread, errors shown in plain words."""
        if self.backend is None:
            set_status(self.status, "Not connected; press Test connection first.", error=True)
            return
        if self.worker is not None:
            return
        set_status(self.status, f"{what}…")

        def finished() -> None:
            self.worker = None

        self.worker = run_task(
            lambda progress: work(),
            on_returned=done,
            on_errored=lambda exc: set_status(self.status, describe_error(exc, what), error=True),
            on_finished=finished,
        )

    def refresh(self) -> None:
        """List the PACS studies."""

        def done(studies: list[dict[str, Any]]) -> None:
            self.studies.clear()
            self.series.clear()
            for study in studies:
                item = QListWidgetItem(study_text(study) or study["StudyInstanceUID"])
                item.setData(UID_ROLE, study["StudyInstanceUID"])
                self.studies.addItem(item)
            set_status(self.status, f"{len(studies)} studies.")

        self._run("Listing studies", lambda: self.backend.pacs_studies(), done)

    def _study_chosen(self, item: QListWidgetItem | None, _: Any = None) -> None:
        if item is None:
            return
        study = item.data(UID_ROLE)

        def done(series: list[dict[str, Any]]) -> None:
            self.series.clear()
            for entry in series:
                row = QListWidgetItem(series_text(entry) or entry["SeriesInstanceUID"])
                row.setData(UID_ROLE, entry["SeriesInstanceUID"])
                self.series.addItem(row)
            if series:
                self.series.setCurrentRow(0)
            set_status(self.status, f"{len(series)} series.")

        self._run("Listing series", lambda: self.backend.pacs_series(study), done)

    def predict(self) -> None:
        """Predict the chosen series on the server, then show image, mask and review map."""
        study, series = self.studies.currentItem(), self.series.currentItem()
        if study is None or series is None or not self.model_combo.currentText():
            set_status(self.status, "Choose a study, a series and a model first.", error=True)
            return
        args = (study.data(UID_ROLE), series.data(UID_ROLE), self.model_combo.currentText())
        store = self.store.isChecked()
        self._run("Prediction", lambda: self._predict_and_fetch(*args, store), self._show)

    def _predict_and_fetch(self, study: str, series: str, model: str, store: bool) -> dict[str, Any]:
        result = self.backend.predict_pacs_series(study, series, model, store=store)
        summary = result["prediction"]
        review_map = summary["review"].get("map_name") or "entropy"
        mask = volume_from_bytes(self.backend.output(summary["id"], "mask"))
        return {
            **result,
            "image": self.backend.stored_image(summary["image"]),
            "mask": Volume(mask.get_fdata().astype("uint8"), mask.affine),
            "map_name": review_map,
            "map": float_map_from_bytes(self.backend.output(summary["id"], review_map)),
        }

    def _show(self, result: dict[str, Any]) -> None:
        self.viewer.add_image(result["image"].array, **layer_kwargs(result["image"]), name="PACS series")
        self.viewer.add_image(
            result["map"].array, **layer_kwargs(result["map"]), name=result["map_name"], colormap="magma", opacity=0.5
        )
        self.viewer.add_labels(result["mask"].array, **layer_kwargs(result["mask"]), name="mask")
        where = "stored in the PACS" if result["stored"] else "not stored (store unchecked)"
        set_status(self.status, f"Predicted; SEG and {len(result['maps'])} map(s) {where}.")
