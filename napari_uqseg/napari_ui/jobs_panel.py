"""Corrections and fine-tuning: submit the edited mask with its review state, run a fine-tune, offer the new version."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
from qtpy.QtCore import Signal
from qtpy.QtGui import QPixmap
from qtpy.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_uqseg.client.backend import Backend
from napari_uqseg.client.errors import describe_error
from napari_uqseg.client.job_wait import JobWatch
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.finetune_verdict import FINETUNE_ITERATIONS
from napari_uqseg.core.records import JobStatus
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.volume import Volume
from napari_uqseg.napari_ui.connection import set_status
from napari_uqseg.napari_ui.finetune_result import before_after_png, metric_rows, recommendation_text
from napari_uqseg.napari_ui.workers import run_generator, run_task

#: seconds between job status polls
POLL_INTERVAL_S = 0.5


@dataclass
class CorrectionSource:
    """What a correction is made of: the current case's edited mask, its prediction and its review state.

    ``reviewed``: the voxels the reader reviewed (``core.reviewed.reviewed_mask``); ``None``: the whole case.
    """

    prediction_id: str
    label: Volume
    review: ReviewRanking
    model: str
    version: str
    reviewed: Volume | None = None


def correction_key(source: CorrectionSource) -> str:
    """Idempotency key: the same edited mask for the same prediction is stored once, however often it is sent."""
    digest = hashlib.sha256(source.prediction_id.encode())
    digest.update(np.ascontiguousarray(source.label.array).tobytes())
    if source.reviewed is not None:  # more regions reviewed later: another correction, not a conflicting retry
        digest.update(np.packbits(np.asarray(source.reviewed.array, dtype=bool)).tobytes())
    return digest.hexdigest()[:32]


def format_eta(seconds: float | None) -> str:
    """``"ETA 1 min 05 s"`` / ``"ETA 12 s"`` / ``""`` when unknown."""
    if seconds is None or seconds != seconds:
        return ""
    seconds = max(0, round(seconds))
    return f"ETA {seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"ETA {seconds} s"


class JobsPanel(QGroupBox):
    """Submit correction; Fine-tune with progress, ETA and Cancel; switch to the new version.

    Parameters
    ----------
    get_backend : callable
        Returns the connected backend or ``None``.
    get_source : callable
        Returns the current case's :class:`CorrectionSource`; raises ``InputError`` if there is none.

    Signals
    -------
    version_switched(str, str)
        ``(model, version)`` after the user switched to a fine-tuned version.
    """

    version_switched = Signal(str, str)

    def __init__(self, get_backend: Callable[[], Backend | None], get_source: Callable[[], CorrectionSource]) -> None:
        super().__init__("Corrections and fine-tuning")
        self._get_backend = get_backend
        self._get_source = get_source
        self.submitted: list[str] = []
        self.job: JobStatus | None = None
        self.new_version: tuple[str, str] | None = None
        self.submit_worker: Any = None
        self.job_worker: Any = None
        self._cancelling = False

        self.submit_button = QPushButton("Submit correction")
        self.submit_button.clicked.connect(self.submit)
        self.submit_status = QLabel("Edit the mask with napari's label tools, then submit it.")
        self.submit_status.setWordWrap(True)
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 100_000)
        self.iterations.setValue(FINETUNE_ITERATIONS)
        self.finetune_button = QPushButton("Fine-tune")
        self.finetune_button.clicked.connect(self.start_finetune)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_finetune)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.job_status = QLabel("")
        self.job_status.setWordWrap(True)
        self.recommendation = QLabel("")
        self.recommendation.setWordWrap(True)
        self.recommendation.setVisible(False)
        self.metrics = QTableWidget(0, 3)
        self.metrics.setHorizontalHeaderLabels(["metric", "before", "after"])
        self.metrics.verticalHeader().setVisible(False)
        self.metrics.setVisible(False)
        self.figures = QHBoxLayout()
        self.switch_button = QPushButton("Switch to new version")
        self.switch_button.setVisible(False)
        self.switch_button.clicked.connect(self.switch_version)

        layout = QVBoxLayout(self)
        layout.addWidget(self.submit_button)
        layout.addWidget(self.submit_status)
        form = QFormLayout()
        form.addRow("Fine-tune iterations", self.iterations)
        layout.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.finetune_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.job_status)
        layout.addWidget(self.metrics)
        layout.addWidget(self.recommendation)
        layout.addLayout(self.figures)
        layout.addWidget(self.switch_button)

    # --- corrections ---------------------------------------------------------------------------------------
    def submit(self) -> None:
        """Send the current case's edited mask and review state (in a worker)."""
        if self.submit_worker is not None:
            return
        try:
            backend = self._backend()
            source = self._get_source()
        except InputError as exc:
            set_status(self.submit_status, describe_error(exc, "Submit"), error=True)
            return
        set_status(self.submit_status, "Submitting…")
        self.submit_button.setEnabled(False)
        key = correction_key(source)

        def work(progress: Any) -> str:
            return backend.submit_correction(
                source.prediction_id, source.label, source.review, client_key=key, reviewed=source.reviewed
            )

        def returned(correction_id: str) -> None:
            if correction_id not in self.submitted:
                self.submitted.append(correction_id)
            done = source.review.reviewed_count()
            set_status(
                self.submit_status,
                f"Correction {correction_id} stored ({done} of {len(source.review.regions)} regions reviewed); "
                f"{len(self.submitted)} submitted this session.",
            )

        def finished() -> None:
            self.submit_worker = None
            self.submit_button.setEnabled(True)

        self.submit_worker = run_task(
            work,
            on_returned=returned,
            on_errored=lambda exc: set_status(self.submit_status, describe_error(exc, "Submit"), error=True),
            on_finished=finished,
        )

    # --- fine-tuning ---------------------------------------------------------------------------------------
    def start_finetune(self) -> None:
        """Start a fine-tune of the current model on the submitted corrections and poll it until it ends."""
        if self.job_worker is not None:
            return
        try:
            backend = self._backend()
            source = self._get_source()
        except InputError as exc:
            set_status(self.job_status, describe_error(exc, "Fine-tune"), error=True)
            return
        params: dict[str, Any] = {"version": source.version, "options": {"iterations": int(self.iterations.value())}}
        if self.submitted:  # this session's corrections; without any, the server uses all of the model's
            params["corrections"] = list(self.submitted)
        self._clear_result()
        self._cancelling = False
        set_status(self.job_status, "Starting fine-tune…")
        self.finetune_button.setEnabled(False)
        self.progress.setValue(0)

        def poll() -> Generator[JobStatus, None, tuple[JobStatus, bytes | None]]:
            status = backend.start_job("finetune", source.model, params)
            yield status
            watch = JobWatch(backend, status.id, status)
            yield from watch.follow(
                POLL_INTERVAL_S, should_stop=lambda: self.job_worker is not None and self.job_worker.abort_requested
            )
            status = watch.status
            # the figure is drawn here, off the GUI thread (matplotlib's Agg canvas needs no display)
            return status, before_after_png(status.result) if status.state == "succeeded" else None

        def finished() -> None:
            self.job_worker = None
            self.finetune_button.setEnabled(True)
            self.cancel_button.setEnabled(False)

        self.job_worker = run_generator(
            poll,
            on_yielded=self._show_job,
            on_returned=self._job_ended,
            on_errored=lambda exc: set_status(self.job_status, describe_error(exc, "Fine-tune"), error=True),
            on_finished=finished,
        )

    def cancel_finetune(self) -> None:
        """Ask the backend to cancel the running job; polling goes on until it reports it stopped."""
        if self.job is None or self.job.finished:
            return
        backend, job_id = self._get_backend(), self.job.id
        if backend is None:
            return
        self._cancelling = True
        self.cancel_button.setEnabled(False)
        set_status(self.job_status, "Cancelling…")
        run_task(
            lambda progress: backend.cancel_job(job_id),
            on_errored=lambda exc: set_status(self.job_status, describe_error(exc, "Cancel"), error=True),
        )

    def switch_version(self) -> None:
        """Serve the new version and tell the segment widget to use it."""
        if self.new_version is None:
            return
        backend = self._get_backend()
        model, version = self.new_version
        if backend is None:
            return

        def returned(_: Any) -> None:
            set_status(self.job_status, f"Now using {model} version {version}.")
            self.switch_button.setVisible(False)
            self.version_switched.emit(model, version)

        run_task(
            lambda progress: backend.promote(model, version),
            on_returned=returned,
            on_errored=lambda exc: set_status(self.job_status, describe_error(exc, "Switch version"), error=True),
        )

    # --- internals -----------------------------------------------------------------------------------------
    def _backend(self) -> Backend:
        backend = self._get_backend()
        if backend is None:
            raise InputError("connection", "not connected; choose Local or Remote and press Connect")
        return backend

    def _show_job(self, status: JobStatus) -> None:
        self.job = status
        self.cancel_button.setEnabled(not status.finished and not self._cancelling)
        self.progress.setValue(round(1000 * min(max(status.progress, 0.0), 1.0)))
        if not self._cancelling or status.finished:
            text = f"Fine-tune {status.state}: {status.message}".rstrip(": ")
            eta = format_eta(status.eta_s) if not status.finished else ""
            set_status(self.job_status, f"{text}  {eta}".strip())

    def _job_ended(self, ended: tuple[JobStatus, bytes | None]) -> None:
        status, figure = ended
        self._show_job(status)
        if status.state == "failed":
            set_status(self.job_status, f"Fine-tune failed: {status.error or status.message}", error=True)
        elif status.state == "cancelled":
            set_status(self.job_status, "Fine-tune cancelled; the served model is unchanged.")
        elif status.state == "succeeded":
            self._offer(status.result, figure)

    def _offer(self, result: dict[str, Any], figure: bytes | None) -> None:
        model, version = str(result.get("model", "")), str(result.get("version", ""))
        rows = metric_rows(result)
        self.metrics.setRowCount(len(rows))
        for row, values in enumerate(rows):
            for col, text in enumerate(values):
                self.metrics.setItem(row, col, QTableWidgetItem(text))
        self.metrics.setVisible(bool(rows))
        verdict = recommendation_text(result)
        self.recommendation.setText(verdict)
        self.recommendation.setVisible(bool(verdict))
        pixmap = QPixmap()
        if figure and pixmap.loadFromData(figure):
            label = QLabel()
            label.setPixmap(pixmap.scaledToWidth(300))
            label.setToolTip("Dice before and after fine-tuning: held-back corrections (never trained on), validation")
            self.figures.addWidget(label)
        if model and version:
            self.new_version = (model, version)
            self.switch_button.setText(f"Switch to {model} version {version}")
            self.switch_button.setVisible(True)
            set_status(self.job_status, f"Fine-tune finished: new version {version} of {model} is ready.")
            warnings = [str(w) for w in result.get("member_warnings", [])]
            if warnings:  # a member that lost a class makes the new version's maps misleading
                text = f"New version {version} of {model} is ready, but its member check warns: {warnings[0]}"
                set_status(self.job_status, text, error=True)
                self.job_status.setToolTip("\n".join(warnings))

    def _clear_result(self) -> None:
        self.new_version = None
        self.job_status.setToolTip("")
        self.switch_button.setVisible(False)
        self.metrics.setRowCount(0)
        self.metrics.setVisible(False)
        self.recommendation.setText("")
        self.recommendation.setVisible(False)
        while self.figures.count():
            item = self.figures.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
