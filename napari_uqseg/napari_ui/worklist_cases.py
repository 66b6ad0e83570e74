"""A triage worklist in napari: its cases join the review panel's case list and open, with outputs, on click.

The worklist comes from a ``uqseg triage`` folder or a server's triage job
(``client.worklist_source``). Opening a case adds its image as a layer and hands its prediction to the
segment widget exactly as a fresh prediction would be, so display, review cursor and keys work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QInputDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_uqseg.client.backend import Backend, PredictionResult
from napari_uqseg.client.errors import describe_error
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.client.worklist_source import LocalWorklist, RemoteWorklist, WorklistSource
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume
from napari_uqseg.core.worklist import volume_summary
from napari_uqseg.napari_ui.connection import set_status
from napari_uqseg.napari_ui.layers import layer_kwargs
from napari_uqseg.napari_ui.workers import run_task

if TYPE_CHECKING:
    import napari


def job_worklist(backend: Backend | None, job_id: str) -> WorklistSource:
    """The worklist of triage job ``job_id`` on the connected backend (remote server or local folder)."""
    if backend is None:
        raise InputError("connection", "connect first: the worklist of a job lives on the backend")
    service = getattr(backend, "service", None)
    if service is not None:  # LocalBackend: the job folder is on this machine
        return LocalWorklist(service.store.job_dir(job_id) / "triage")
    if isinstance(backend, RemoteBackend):
        return RemoteWorklist(backend, job_id)
    raise InputError("connection", f"{type(backend).__name__} cannot open a job's worklist")


class WorklistCases(QWidget):
    """Buttons to open a worklist, and the opening of its cases.

    Parameters
    ----------
    viewer : napari.Viewer
        Where case images are added.
    backend : callable
        Returns the connected backend (for "From server job").
    show_result : callable
        ``show_result(layer name, PredictionResult)``: the segment widget's display of a prediction.
    on_loaded : callable
        Called after a worklist was (re)loaded, to refresh the case list.
    """

    def __init__(
        self,
        viewer: napari.Viewer,
        backend: Callable[[], Backend | None],
        show_result: Callable[[str, PredictionResult], None],
        on_loaded: Callable[[], None],
    ) -> None:
        super().__init__()
        self.viewer = viewer
        self._backend = backend
        self._show_result = show_result
        self._on_loaded = on_loaded
        self.source: WorklistSource | None = None
        self.worker: Any = None
        self.folder_button = QPushButton("Open worklist folder…")
        self.folder_button.clicked.connect(self._choose_folder)
        self.job_button = QPushButton("Worklist of a triage job…")
        self.job_button.clicked.connect(self._choose_job)
        self.status = QLabel("No worklist: `uqseg triage` writes one for a whole study.")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.folder_button)
        row.addWidget(self.job_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)

    # --- the worklist --------------------------------------------------------------------------------------
    def open_source(self, source: WorklistSource) -> None:
        """Show ``source``'s cases in the case list (worst first); nothing is downloaded until a case is opened."""
        self.source = source
        flagged = sum(1 for r in source.rows if r.flags)
        set_status(self.status, f"Worklist {source.source}: {len(source.rows)} cases, {flagged} flagged.")
        self._on_loaded()

    def open_folder(self, folder: str | Path) -> None:
        """Open the worklist a ``uqseg triage --out folder`` run wrote."""
        self._guarded(lambda: self.open_source(LocalWorklist(folder)))

    def open_job(self, job_id: str) -> None:
        """Open the worklist of a finished triage job on the connected backend."""
        self._guarded(lambda: self.open_source(job_worklist(self._backend(), job_id)))

    def scores(self) -> dict[str, float]:
        """Case id -> case score, for the case list."""
        return {r.case: r.score for r in self.source.rows} if self.source else {}

    def notes(self) -> dict[str, str]:
        """Case id -> flags, then each structure's volume with its 90 % interval where calibrated (mL), in words."""
        rows = self.source.rows if self.source else []
        return {
            r.case: " | ".join(filter(None, [", ".join(r.flags), volume_summary(r.volumes_ml, r.volume_intervals_ml)]))
            for r in rows
        }

    def has(self, case: str) -> bool:
        return self.source is not None and any(r.case == case for r in self.source.rows)

    # --- opening a case ------------------------------------------------------------------------------------
    def open_case(self, case: str) -> None:
        """Load the case's image and outputs in a worker, then show them as a prediction."""
        source = self.source
        if source is None or self.worker is not None:
            return
        set_status(self.status, f"Opening {case}…")

        def done() -> None:
            self.worker = None

        self.worker = run_task(
            lambda progress: source.open_case(case),
            on_returned=lambda loaded: self._opened(case, *loaded),
            on_errored=lambda exc: set_status(self.status, describe_error(exc, "Worklist"), error=True),
            on_finished=done,
        )

    def _opened(self, case: str, image: Volume, result: PredictionResult) -> None:
        if case not in self.viewer.layers:
            self.viewer.add_image(image.array, name=case, **layer_kwargs(image))
        self._show_result(case, result)
        set_status(self.status, f"{case}: {self.source.row(case).reason if self.source else ''}")

    # --- dialogs -------------------------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder written by uqseg triage")
        if folder:
            self.open_folder(folder)

    def _choose_job(self) -> None:
        job_id, ok = QInputDialog.getText(self, "Triage job", "Job id of a finished triage job:")
        if ok and job_id.strip():
            self.open_job(job_id.strip())

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001  (shown to the user, not raised into Qt)
            set_status(self.status, describe_error(exc, "Worklist"), error=True)
