"""Everything the server does, without HTTP: the routes and ``LocalBackend`` both call this one class."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import napari_uqseg
from napari_uqseg.core.errors import InputError, NotFoundError
from napari_uqseg.core.json_values import clean_json
from napari_uqseg.core.output_box import foreground_box
from napari_uqseg.core.predict_options import PredictOptions
from napari_uqseg.core.records import JobStatus, MethodInfo, ModelSummary, Prediction
from napari_uqseg.core.volume import Volume
from napari_uqseg.core.wire import (
    NAME_PATTERN,
    PROTOCOL_VERSION,
    SHA256_PATTERN,
    VERSION_PATTERN,
    check_id,
)
from napari_uqseg.server.corrections import decode_label, decode_reviewed, payload_sha
from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.server.device_lease import DeviceLease, LeasePolicy
from napari_uqseg.server.device_worker import DeviceWorker
from napari_uqseg.server.job_checks import check_job
from napari_uqseg.server.job_runner import JOB_KINDS
from napari_uqseg.server.ledger import new_id
from napari_uqseg.server.load_limits import LoadLimits, RequestCounter, check_prediction_cost, prediction_cost
from napari_uqseg.server.prediction_outputs import FLOAT_SUFFIX, encode_in_background
from napari_uqseg.server.saturation import admit_job, admit_prediction, saturation, wait_for_device
from napari_uqseg.server.triage_job import case_file, worklist_document

#: inference options a client may set per prediction (model-defining options are fixed by the version)
PREDICT_OPTIONS = PredictOptions.names()


class Service:
    """The server's operations on one data folder and one device.

    Parameters
    ----------
    data_dir : Path
        Data folder (see ``server.data_dir``).
    device : str
        ``auto``, ``cpu`` or ``cuda[:N]``.
    jobs : bool
        Start the local job executor (``False`` for read-only uses such as a benchmark).
    max_voxels : int
        Largest accepted image.
    cache_size : int
        Models kept loaded on the device.
    lease : LeasePolicy or None
        How jobs share the device with predictions (``server.device_lease``; default ``LeasePolicy()``).
    """

    def __init__(
        self,
        data_dir: str | Path,
        device: str = "auto",
        jobs: bool = True,
        max_voxels: int = 512 * 512 * 1024,
        cache_size: int = 2,
        limits: dict[str, int] | None = None,
        load: LoadLimits | None = None,
        lease: LeasePolicy | None = None,
    ) -> None:
        from napari_uqseg.engine.device import resolve_device

        self.load = load or LoadLimits()
        self.store = DataDir(data_dir, max_voxels, self.load.min_free_mb)
        self.device = str(resolve_device(device))
        self.lease_policy = lease or LeasePolicy()  # how jobs share the device with predictions
        self.worker = DeviceWorker(self.device, cache_size, DeviceLease(self.store.root, self.device))
        self.limits = {"max_voxels": max_voxels, **self.load.to_dict(), **(limits or {})}
        self.requests = RequestCounter(self.load.max_requests)  # counted by the app's middleware
        self._methods: list[MethodInfo] | None = None
        self.executor = None
        self.pacs = None  # server.dicomweb.PacsGateway of `uqseg serve --dicomweb URL`
        if jobs:
            from napari_uqseg.server.executor import LocalExecutor

            self.executor = LocalExecutor(self.store, self.device, self.lease_policy)
            self.executor.start()

    # -- discovery ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Protocol, version and saturation (queues, free disk, device memory); ``status`` "busy" at a bound."""
        load = saturation(self)
        status = "busy" if load["busy"] else "ok"
        return {"status": status, "protocol": PROTOCOL_VERSION, "server_version": napari_uqseg.__version__, **load}

    def methods(self) -> list[MethodInfo]:
        """Every registered method with its cost at default options (computed once)."""
        if self._methods is None:
            from napari_uqseg.engine.methods.base import registered_methods
            from napari_uqseg.engine.unet import UNetConfig

            tiny = UNetConfig(channels=(4, 8))  # forward-pass counts do not depend on the width
            self._methods = [cls(tiny).info() for _, cls in sorted(registered_methods().items())]
        return self._methods

    def models(self) -> list[ModelSummary]:
        return [self.model(name) for name in self.store.ledger.model_names()]

    def model(self, name: str) -> ModelSummary:
        check_id(name, "model", NAME_PATTERN)
        summary = self.store.ledger.summary(name)
        return ModelSummary(name, summary.serving, summary.versions, self.store.labels_of(name, summary.serving))

    def capabilities(self) -> dict[str, Any]:
        return {
            **self.health(),
            "device": self.device,
            "methods": [m.to_dict() for m in self.methods()],
            "models": [m.to_dict() for m in self.models()],
            "limits": self.limits,
            "job_kinds": list(JOB_KINDS),
            "predict_options": list(PREDICT_OPTIONS),
            "queued_predictions": self.worker.queued(),
        }

    # -- images and predictions -----------------------------------------------------------------
    def put_image(self, sha: str, data: bytes) -> dict[str, Any]:
        volume, created = self.store.put_image(sha, data)
        return {"image": sha, "shape": list(volume.shape), "created": created}

    def put_image_file(self, sha: str, upload: Path, digest: str) -> dict[str, Any]:
        """Like ``put_image`` for an upload streamed to ``upload`` (sha256 ``digest``); the file is moved."""
        volume, created = self.store.put_image_file(sha, upload, digest)
        return {"image": sha, "shape": list(volume.shape), "created": created}

    def _predict_options(self, options: dict[str, Any] | None) -> PredictOptions:
        return PredictOptions.from_dict(options, max_sw_batch_size=self.load.max_sw_batch_size)

    def predict(
        self, image: str, model: str, version: str | None = None, options: dict | None = None
    ) -> dict[str, Any]:
        """Predict a stored image; blocks until the device worker has run it. Returns the JSON summary."""
        return self.run_prediction(image, model, version, options)[0]

    def run_prediction(
        self,
        image: str,
        model: str,
        version: str | None = None,
        options: dict | None = None,
        volume: Volume | None = None,
        keep_outputs: bool = True,
    ) -> tuple[dict[str, Any], Prediction]:
        """Predict and record; ``(summary, prediction)``.

        ``volume`` skips re-reading the stored image; ``keep_outputs=False`` (in-process callers, who
        hold the arrays) skips writing output files, and the summary then lists no outputs.
        """
        start = time.perf_counter()
        check_id(image, "image", SHA256_PATTERN)
        check_id(model, "model", NAME_PATTERN)
        opts = self._predict_options(options)
        summary = self.store.ledger.summary(model)
        version = version or summary.serving
        check_id(version, "version", VERSION_PATTERN)
        method = summary.method_of(version) if version in {v.version for v in summary.versions} else None
        if method is None:
            raise NotFoundError("version", f"model {model!r} has no version {version!r}")
        volume = volume if volume is not None else self.store.image(image)
        prediction = self._on_device(self.store.model_dir(model, version), volume, opts)
        encoding = encode_in_background(prediction, opts.float32) if keep_outputs else None  # beside the review
        t = time.perf_counter()
        review = opts.review_ranking(prediction)
        timings = {**prediction.timings, "review": time.perf_counter() - t}
        t = time.perf_counter()
        pid = new_id()
        if encoding is not None:
            self.store.write_outputs(pid, encoding.result())
        timings["encode"] = time.perf_counter() - t  # what is left of encoding and writing after the review
        timings["total"] = time.perf_counter() - start
        result = clean_json(
            {
                "id": pid,
                "image": image,
                "model": model,
                "version": version,
                "method": method,
                "shape": list(volume.shape),
                "affine": volume.affine.tolist(),
                "outputs": ["mask", "probabilities", *prediction.maps] if keep_outputs else [],
                "foreground_box": foreground_box(prediction.mask.array),  # additive (issue 20): the ROI's core
                "float32": opts.float32 and keep_outputs,
                "review": review.to_dict(),
                "timings": timings,
                "info": prediction.info,
                "labels": self.store.labels_of(model, version),
            }
        )
        self.store.ledger.add_prediction(pid, image, model, version, method, result)
        return result, prediction

    def _on_device(self, model_dir: Path, volume: Volume, opts: PredictOptions) -> Prediction:
        """Run on the device worker within the load bounds: cost cap (400), queue cap and wait (503)."""
        check_prediction_cost(prediction_cost(model_dir, volume.shape, float(opts.overlap)), self.load)
        admit_prediction(self.worker, self.load)
        future = self.worker.predict(model_dir, volume, opts.overlap, opts.sw_batch_size, opts.tta, opts.precision)
        return wait_for_device(future, self.load)

    def prediction(self, pid: str) -> dict[str, Any]:
        return self.store.ledger.prediction(check_id(pid, "prediction id"))["summary"]

    def output(self, pid: str, name: str, dtype: str = "uint8") -> Path:
        """File of one output (``dtype="float32"`` only if the prediction asked for float32 outputs)."""
        if dtype not in ("uint8", "float32"):
            raise InputError("dtype", f"must be uint8 or float32, got {dtype[:20]!r}")
        summary = self.prediction(pid)
        if dtype == "float32" and name != "mask":
            if not summary["float32"]:
                raise InputError("dtype", "float32 outputs were not kept; predict with options {'float32': true}")
            name = name + FLOAT_SUFFIX
        return self.store.output_path(pid, name)

    # -- corrections ----------------------------------------------------------------------------
    def submit_correction(
        self,
        prediction_id: str,
        label: bytes | str,
        client_key: str | None = None,
        review: dict | None = None,
        actor: str = "",
        reviewed: bytes | str | None = None,
    ) -> tuple[str, bool]:
        """Validate and durably store a corrected label map; returns ``(correction id, created)``.

        ``reviewed`` (optional, NIfTI bytes or base64 like ``label``): 0/1 mask of the voxels a person
        reviewed (``core.reviewed``); stored beside the label, and the fine-tune trains on those voxels only.

        ``label`` is NIfTI bytes (or their base64 text, as JSON carries it). The file is fsync'd and the
        ledger row committed (synchronous=FULL) before this returns: an acknowledged correction survives
        a crash. A repeated ``client_key`` returns the first correction (checked inside the insert's
        transaction, so racing retries store one); reused with another label it is a ``ConflictError``.
        """
        if client_key is not None:
            check_id(client_key, "client_key", NAME_PATTERN)
        prediction = self.store.ledger.prediction(check_id(prediction_id, "prediction id"))
        image = self.store.image(prediction["image"])
        array = decode_label(label, prediction, image)
        review = review or {}
        if not isinstance(review, dict):
            raise InputError("review", "must be a JSON object (ReviewRanking.to_dict())")
        mask = None if reviewed is None else decode_reviewed(reviewed, image)
        cid = new_id()
        try:
            self.store.write_correction(cid, Volume(array, image.affine))
            if mask is not None:
                self.store.write_reviewed(cid, Volume(mask, image.affine))
            sha = payload_sha(prediction["image"], array, mask)
            count = None if mask is None else int(mask.sum())
            stored, created = self.store.ledger.add_correction(cid, client_key, prediction, review, sha, actor, count)
        except BaseException:
            self._drop_correction_files(cid)  # no row names them: no orphan files
            raise
        if not created:
            self._drop_correction_files(cid)  # a retry: the first one is kept
        return stored, created

    def _drop_correction_files(self, cid: str) -> None:
        self.store.correction_path(cid).unlink(missing_ok=True)
        self.store.reviewed_path(cid).unlink(missing_ok=True)

    # -- model versions -------------------------------------------------------------------------
    def promote(self, model: str, version: str, actor: str = "") -> ModelSummary:
        check_id(model, "model", NAME_PATTERN)
        self.store.ledger.promote(model, check_id(version, "version", VERSION_PATTERN), actor)
        return self.model(model)

    def rollback(self, model: str, actor: str = "") -> ModelSummary:
        self.store.ledger.summary(check_id(model, "model", NAME_PATTERN))  # 404 for an unknown model
        self.store.ledger.rollback(model, actor)
        return self.model(model)

    def import_model(self, name: str, source: str | Path, actor: str = "admin") -> ModelSummary:
        """Add a model folder (``engine.model_folder`` layout) as the next version of ``name`` (admin path only)."""
        self.store.add_model_version(check_id(name, "model", NAME_PATTERN), Path(source), actor=actor)
        return self.model(name)

    # -- jobs -----------------------------------------------------------------------------------
    def start_job(
        self, kind: str, model: str, params: dict | None = None, client_key: str | None = None, actor: str = ""
    ) -> JobStatus:
        params = params or {}
        check_job(self.store, kind, model, params)
        if client_key is not None:
            check_id(client_key, "client_key", NAME_PATTERN)
        admit_job(self.store.ledger, self.load)
        jid, _ = self.store.ledger.create_job(kind, model, params, client_key, actor)
        return self.store.ledger.job(jid)

    def job(self, jid: str) -> JobStatus:
        return self.store.ledger.job(check_id(jid, "job id"))

    def jobs(self) -> list[JobStatus]:
        return self.store.ledger.jobs()

    def cancel_job(self, jid: str) -> JobStatus:
        self.store.ledger.request_cancel(check_id(jid, "job id"))
        if self.executor is not None:
            self.executor.cancel(jid)
        return self.job(jid)

    def worklist(self, jid: str) -> dict[str, Any]:
        """The worklist a finished triage job wrote (``worklist.json``: ``meta`` and sorted ``cases``)."""
        return worklist_document(self.store, jid)

    def worklist_file(self, jid: str, case: str, name: str) -> Path:
        """A triaged case's ``image``, ``review`` (JSON) or output volume (``mask``, a map name ...)."""
        return case_file(self.store, jid, case, name)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.stop()
        self.worker.close()
        self.store.ledger.close()
