"""``LocalBackend``: the same calls as ``RemoteBackend``, served by an in-process engine.

For users without a server. It runs the server's own ``Service`` on a local data folder (same ledger,
same model versions, same job subprocesses), so both backends behave alike. The engine (torch) is
imported only when a ``LocalBackend`` is created, never by importing this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from napari_uqseg.client.backend import Backend, PredictionResult
from napari_uqseg.client.errors import BadRequest, NotFoundError
from napari_uqseg.client.payloads import label_payload, review_from_wire, reviewed_payload
from napari_uqseg.core import errors as core_errors
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.records import JobStatus, MethodInfo, ModelSummary
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.volume import Volume, check_image_array
from napari_uqseg.core.wire import sha256_hex

T = TypeVar("T")


def default_local_dir() -> Path:
    """Per-user data folder of the in-process backend (platformdirs, or ``~/.napari-uqseg/local``)."""
    try:
        import platformdirs

        return Path(platformdirs.user_data_dir("napari-uqseg")) / "local"
    except ImportError:
        return Path.home() / ".napari-uqseg" / "local"


def _typed(call: Callable[[], T]) -> T:
    """Run ``call`` raising the client's typed errors, as ``RemoteBackend`` does for HTTP 400/404."""
    try:
        return call()
    except core_errors.NotFoundError as exc:
        raise NotFoundError(exc.problem, 404, "not_found", exc.source) from exc
    except InputError as exc:
        raise BadRequest(exc.problem, 400, "bad_input", exc.source) from exc


class LocalBackend(Backend):
    """In-process backend.

    Parameters
    ----------
    data_dir : Path or None
        Data folder in the server layout (default: per-user folder, see :func:`default_local_dir`).
    device : str
        ``auto``, ``cpu`` or ``cuda[:N]``.
    models : dict of str to Path, optional
        Model folders to register as ``NAME`` v1 when ``NAME`` is not there yet (like ``--import-model``).
    jobs : bool
        Run fine-tune/train/evaluate jobs (as subprocesses, exactly as the server does).
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        device: str = "auto",
        models: dict[str, str | Path] | None = None,
        jobs: bool = True,
    ) -> None:
        from napari_uqseg.server.service import Service  # the engine loads here, not at import

        self.service = _typed(lambda: Service(Path(data_dir) if data_dir else default_local_dir(), device, jobs=jobs))
        known = set(self.service.store.ledger.model_names())
        for name, folder in (models or {}).items():
            if name not in known:
                _typed(lambda name=name, folder=folder: self.service.import_model(name, folder))

    def health(self) -> dict[str, Any]:
        return self.service.health()

    def capabilities(self) -> dict[str, Any]:
        return _typed(self.service.capabilities)

    def methods(self) -> list[MethodInfo]:
        return list(self.service.methods())

    def models(self) -> list[ModelSummary]:
        return _typed(self.service.models)

    def predict(
        self,
        image: Volume,
        model: str,
        version: str | None = None,
        options: dict[str, Any] | None = None,
        progress: Progress = no_progress,
    ) -> PredictionResult:
        start = time.perf_counter()
        progress(0, 2, "storing image")

        def run() -> PredictionResult:
            checked = Volume(check_image_array(image.array, "image"), image.affine)
            data = nifti_bytes(checked, dtype="float32", compress=False)
            sha = sha256_hex(data)
            self.service.store.put_image(sha, data)  # kept by hash: corrections and fine-tunes refer to it
            progress(1, 2, "predicting")
            summary, prediction = self.service.run_prediction(sha, model, version, options, checked, keep_outputs=False)
            prediction.info.update(
                {"model": summary["model"], "version": summary["version"], "labels": summary["labels"]}
            )
            return PredictionResult(
                summary["id"],
                prediction,
                review_from_wire(summary["review"]),
                summary["model"],
                summary["version"],
                dict(summary["timings"]),
            )

        result = _typed(run)
        result.timings["client_total"] = time.perf_counter() - start
        progress(2, 2, "done")
        return result

    def submit_correction(
        self,
        prediction_id: str,
        label: Volume,
        review: ReviewRanking | None = None,
        client_key: str | None = None,
        reviewed: Volume | None = None,
    ) -> str:
        payload = review.to_dict() if review is not None else {}
        mask = None if reviewed is None else reviewed_payload(reviewed)
        submit = self.service.submit_correction
        return _typed(lambda: submit(prediction_id, label_payload(label), client_key, payload, reviewed=mask))[0]

    def start_job(self, kind: str, model: str, params: dict[str, Any] | None = None) -> JobStatus:
        return _typed(lambda: self.service.start_job(kind, model, params or {}))

    def job(self, job_id: str, wait: float = 0.0) -> JobStatus:
        """Answers at once (``wait`` is the most a backend may hold the answer); ``JobWatch`` polls."""
        return _typed(lambda: self.service.job(job_id))

    def cancel_job(self, job_id: str) -> JobStatus:
        return _typed(lambda: self.service.cancel_job(job_id))

    def promote(self, model: str, version: str) -> ModelSummary:
        return _typed(lambda: self.service.promote(model, version))

    def rollback(self, model: str) -> ModelSummary:
        return _typed(lambda: self.service.rollback(model))

    # -- model library ------------------------------------------------------------------------------
    def catalogue(self) -> list[dict[str, Any]]:
        from napari_uqseg.server import model_library

        return [e.to_dict() for e in _typed(model_library.catalogue)]

    def pull_model(self, entry: str, name: str | None = None) -> ModelSummary:
        from napari_uqseg.server import model_library

        return _typed(lambda: model_library.pull_model(self.service, entry, name))

    def import_model(self, name: str, path: str) -> ModelSummary:
        from napari_uqseg.server import model_library

        return _typed(lambda: model_library.import_model(self.service, name, path))

    def export_model(self, name: str, version: str | None, archive: str) -> str:
        from napari_uqseg.server import model_library

        return str(_typed(lambda: model_library.export_model(self.service, name, version, archive)))

    def upload_dataset(self, name: str, folder: str) -> str:
        from napari_uqseg.server import model_library

        return _typed(lambda: model_library.add_dataset(self.service, name, folder)).name

    def close(self) -> None:
        self.service.close()
