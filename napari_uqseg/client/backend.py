"""The one interface both viewers use to reach an engine, local or remote."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from napari_uqseg.client.job_wait import JobWatch
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.records import JobStatus, MethodInfo, ModelSummary, Prediction
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.volume import Volume


@dataclass
class PredictionResult:
    """A prediction as the viewers receive it.

    Attributes
    ----------
    id : str
        Server-made prediction id (referenced by corrections).
    prediction : Prediction
        Mask, probabilities and uncertainty maps on the input's grid and affine.
    review : ReviewRanking
        Case score, slice scores and regions, most uncertain first.
    model, version : str
        What produced it.
    """

    id: str
    prediction: Prediction
    review: ReviewRanking
    model: str
    version: str
    timings: dict[str, float] = field(default_factory=dict)


class Backend(ABC):
    """Engine access for napari and Slicer; ``RemoteBackend`` (HTTP) and ``LocalBackend`` (in-process)."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "protocol": int, "server_version": str}`` (cheap; no model loading)."""

    @abstractmethod
    def capabilities(self) -> dict[str, Any]:
        """Protocol version, device, limits, ``methods`` (list of ``MethodInfo`` dicts) and ``models``."""

    @abstractmethod
    def methods(self) -> list[MethodInfo]:
        """Registered uncertainty methods with their forward-pass cost."""

    @abstractmethod
    def models(self) -> list[ModelSummary]:
        """Named models with their versions and the serving version."""

    @abstractmethod
    def predict(
        self,
        image: Volume,
        model: str,
        version: str | None = None,
        options: dict[str, Any] | None = None,
        progress: Progress = no_progress,
    ) -> PredictionResult:
        """Segment ``image`` with ``model`` (serving version unless ``version``); uncertainty maps included."""

    @abstractmethod
    def submit_correction(
        self,
        prediction_id: str,
        label: Volume,
        review: ReviewRanking | None = None,
        client_key: str | None = None,
        reviewed: Volume | None = None,
    ) -> str:
        """Store a corrected label map for a prediction's image; returns the correction id once on disk.

        ``client_key`` makes the call idempotent (a retry after a timeout stores nothing twice).
        ``reviewed``: bool mask of the voxels a person reviewed (``core.reviewed.reviewed_mask``); the
        fine-tune trains on those only. ``None``: the whole case was reviewed.
        """

    @abstractmethod
    def start_job(self, kind: str, model: str, params: dict[str, Any] | None = None) -> JobStatus:
        """Start ``"finetune"`` (on submitted corrections), ``"train"`` or ``"evaluate"`` in the background."""

    @abstractmethod
    def job(self, job_id: str, wait: float = 0.0) -> JobStatus:
        """Status of a job.

        ``wait`` seconds: the backend may hold the answer until the job is finished or that long passed
        (the server's long poll); it may also answer at once. ``client.job_wait.JobWatch`` builds on this.
        """

    @abstractmethod
    def cancel_job(self, job_id: str) -> JobStatus:
        """Ask a job to stop; returns its status."""

    def wait_job(
        self, job_id: str, timeout: float = 600.0, poll: float = 0.5, progress: Progress = no_progress
    ) -> JobStatus:
        """Wait until the job is finished or ``timeout`` seconds passed; reports ``progress`` every ``poll`` s.

        Returns the last status (check ``.finished``: a timeout returns an unfinished one).
        """
        return JobWatch(self, job_id).wait(timeout, poll, progress)

    @abstractmethod
    def promote(self, model: str, version: str) -> ModelSummary:
        """Serve ``version`` of ``model`` from now on."""

    @abstractmethod
    def rollback(self, model: str) -> ModelSummary:
        """Serve the previously served version again."""

    # -- model library (catalogue, import, export, training data); see server.model_library ---------
    def catalogue(self) -> list[dict[str, Any]]:
        """Entries of the backend's model catalogue: ``name``, ``url``, ``sha256``, ``card``."""
        raise NotImplementedError(f"{type(self).__name__} has no model catalogue")

    def pull_model(self, entry: str, name: str | None = None) -> ModelSummary:
        """Download (checksum-verified) and register catalogue ``entry`` as model ``name`` (default: ``entry``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot pull models")

    def import_model(self, name: str, path: str) -> ModelSummary:
        """Register a model folder or ``.tar.gz`` archive on this machine as the next version of ``name``."""
        raise NotImplementedError(f"{type(self).__name__} cannot import models")

    def export_model(self, name: str, version: str | None, archive: str) -> str:
        """Save a version (default: serving) of ``name`` as a ``.tar.gz`` model archive; returns its path."""
        raise NotImplementedError(f"{type(self).__name__} cannot export models")

    def upload_dataset(self, name: str, folder: str) -> str:
        """Make a labelled MSD-layout folder the backend's training dataset ``name``; returns the name."""
        raise NotImplementedError(f"{type(self).__name__} cannot receive datasets")

    def close(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Release connections or in-process resources."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
