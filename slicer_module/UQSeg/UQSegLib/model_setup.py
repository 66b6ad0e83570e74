"""Slicer's path from "no model" to "predicting", without Slicer: starter model, import, train from the scene.

Blocking calls on a ``UQSegSession`` (run them through ``background.BackgroundWorker``); arrays come in
Slicer's KJI order with the node's IJK-to-RAS matrix, like everything in ``logic``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from napari_uqseg.client.model_setup import (
    TRAIN_ITERATIONS,
    TRAIN_METHODS,
    model_name_from,
    start_training,
    training_outcome,
    use_starter,
)
from napari_uqseg.core.dataset_folder import write_dataset
from napari_uqseg.core.records import JobStatus, ModelSummary

from .geometry import volume_from_kji
from .logic import UQSegSession

__all__ = ["TRAIN_METHODS", "ModelSetup"]


class ModelSetup:
    """Get a model onto the session's server: the shipped starter, an import, or a train job.

    Parameters
    ----------
    session : UQSegSession
        The connected session (remote server or local backend).
    """

    def __init__(self, session: UQSegSession) -> None:
        self.session = session

    def use_starter(self) -> ModelSummary:
        """Register the starter brain model shipped with napari-uqseg (``brain-starter``)."""
        return use_starter(self.session.backend)

    def import_model(self, path: str, name: str | None = None) -> ModelSummary:
        """Register a model folder or ``.tar.gz`` archive as the next version of ``name`` (default: from the path)."""
        return self.session.backend.import_model(name or model_name_from(path), str(path))

    def train_from_folder(
        self, folder: str, name: str, method: str = TRAIN_METHODS[0], iterations: int = TRAIN_ITERATIONS
    ) -> JobStatus:
        """Start a train job on a labelled MSD-layout dataset folder; returns its first status."""
        return start_training(self.session.backend, name, folder, method, iterations)

    def train_from_scene(
        self,
        image_kji: np.ndarray,
        label_kji: np.ndarray,
        ijk_to_ras: np.ndarray,
        name: str,
        method: str = TRAIN_METHODS[0],
        iterations: int = TRAIN_ITERATIONS,
    ) -> JobStatus:
        """Start a train job on a volume node and its labelmap (``(K, J, I)`` arrays on one grid)."""
        image = volume_from_kji(image_kji, ijk_to_ras, "volume")
        label = volume_from_kji(np.asarray(label_kji), ijk_to_ras, "segmentation")
        with tempfile.TemporaryDirectory(prefix="uqseg-train-") as tmp:
            folder = write_dataset(Path(tmp) / "dataset", [(image, label)], name=name)
            return start_training(self.session.backend, name, folder, method, iterations)

    def cancel(self, job_id: str) -> JobStatus:
        """Ask the server to stop the train job."""
        return self.session.cancel_job(job_id)

    def outcome(self, status: JobStatus) -> tuple[str, bool]:
        """``(message, is_warning)`` for a finished job, with the member check's warnings."""
        return training_outcome(status, self.session.models() if status.state == "succeeded" else [])
