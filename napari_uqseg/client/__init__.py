"""Torch-free, Qt-free client: one ``Backend`` interface, remote (HTTP) and local (in-process) implementations.

This is the public API the napari plugin and the 3D Slicer module build on (``__all__``, checked by
``tests/client/test_exported_members.py``); anything else in ``napari_uqseg.client`` may change without notice.
The exception tree is drawn in :mod:`napari_uqseg.client.errors`.
"""

from napari_uqseg.client.backend import Backend, PredictionResult
from napari_uqseg.client.errors import (
    AuthError,
    BackendError,
    BackendTimeout,
    BadRequest,
    ConnectionFailed,
    NotFoundError,
    ProtocolMismatch,
    ServerError,
    TooLarge,
    describe_error,
)
from napari_uqseg.client.job_wait import JobWatch
from napari_uqseg.client.local import LocalBackend, default_local_dir
from napari_uqseg.client.model_setup import (
    TRAIN_METHODS,
    model_name_from,
    start_training,
    training_outcome,
    use_starter,
)
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.client.worklist_source import LocalWorklist, RemoteWorklist, WorklistSource

__all__ = [
    "TRAIN_METHODS",
    "AuthError",
    "Backend",
    "BackendError",
    "BackendTimeout",
    "BadRequest",
    "ConnectionFailed",
    "JobWatch",
    "LocalBackend",
    "LocalWorklist",
    "NotFoundError",
    "PredictionResult",
    "ProtocolMismatch",
    "RemoteBackend",
    "RemoteWorklist",
    "ServerError",
    "TooLarge",
    "WorklistSource",
    "default_local_dir",
    "describe_error",
    "model_name_from",
    "start_training",
    "training_outcome",
    "use_starter",
]
