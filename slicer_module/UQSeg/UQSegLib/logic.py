"""What the Slicer module does, without Slicer: talk to a ``Backend`` with Slicer-ordered arrays.

Every method takes and returns numpy arrays in Slicer's KJI order plus the node's 4x4 IJK-to-RAS matrix, so
``mrml_adapter`` only moves arrays in and out of MRML nodes. The network calls here are blocking; the module runs
them through ``background.BackgroundWorker``. :class:`CaseReview` holds the review state of one result and is
used on the main thread only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_uqseg.client import Backend, JobWatch, PredictionResult
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.finetune_verdict import partial_corrections_text
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.recalibration import recalibration_text
from napari_uqseg.core.records import JobStatus, MethodInfo, ModelSummary
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.reviewed import reviewed_mask
from napari_uqseg.core.volume import Volume, check_image_array, check_label_array

from .calibrated import CalibratedOutputs, calibrated_outputs
from .geometry import kji_from_volume, volume_from_kji
from .review_table import ReviewRow, encode_states, rank_map, restore_states, review_rows, segment_statuses


@dataclass(frozen=True)
class ServerInfo:
    """What ``connect`` learned about the server (shown in the module's status line)."""

    url: str
    protocol: str
    device: str
    models: tuple[ModelSummary, ...]
    methods: tuple[MethodInfo, ...]

    def describe(self) -> str:
        """One line for the status label."""
        return f"{self.url}: protocol {self.protocol}, {self.device}, {len(self.models)} model(s)"


@dataclass
class SegmentationResult:
    """A prediction in Slicer's array order, checked to lie on the input node's grid.

    Attributes
    ----------
    prediction_id : str
        Server id, referenced when submitting a correction.
    ijk_to_ras : np.ndarray
        ``(4, 4)`` matrix of the input node (every array below is on that grid).
    mask_kji : np.ndarray
        ``(K, J, I)`` uint8 labels.
    maps_kji : dict of str to np.ndarray
        ``(K, J, I)`` float32 uncertainty maps by name.
    class_names : dict of int to str
        Foreground label -> name (one segment each).
    ranking : ReviewRanking
        The server's review ranking (voxel coordinates in IJK of the input).
    """

    prediction_id: str
    model: str
    version: str
    method: str
    ijk_to_ras: np.ndarray
    mask_kji: np.ndarray
    maps_kji: dict[str, np.ndarray]
    class_names: dict[int, str]
    ranking: ReviewRanking
    timings: dict[str, float] = field(default_factory=dict)
    calibrated: CalibratedOutputs | None = None  # volumes with intervals, conformal contours (``calibrated``)

    def mask_volume(self) -> Volume:
        """The mask as an IJK ``Volume`` (for ranking and RAS centres)."""
        return volume_from_kji(self.mask_kji, self.ijk_to_ras, "mask")

    def map_volumes(self) -> dict[str, Volume]:
        """Uncertainty maps as IJK ``Volume`` objects."""
        return {name: volume_from_kji(a, self.ijk_to_ras, name) for name, a in self.maps_kji.items()}


def class_names_of(model: ModelSummary | None, mask_kji: np.ndarray) -> dict[int, str]:
    """Foreground class names from the model's labels, falling back to ``class_<n>`` for labels it lacks."""
    labels = dict(model.labels) if model is not None else {}
    present = {int(v) for v in np.unique(mask_kji) if v > 0}
    known = {int(k) for k in labels if str(k).isdigit() and int(k) > 0}
    return {k: labels.get(str(k), f"class_{k}") for k in sorted(present | known)}


def result_in_kji(
    result: PredictionResult,
    ijk_to_ras: np.ndarray,
    shape_kji: tuple[int, ...],
    model: ModelSummary | None = None,
    labels: dict[str, str] | None = None,
) -> SegmentationResult:
    """A client prediction as a ``SegmentationResult`` on the ``(K, J, I)`` grid of the input node.

    Class names come from ``model``'s labels, else from ``labels`` (index as str -> name).
    """
    pred = result.prediction
    mask_kji = kji_from_volume(pred.mask, ijk_to_ras, shape_kji, "mask").astype(np.uint8, copy=False)
    maps_kji = {
        name: kji_from_volume(vol, ijk_to_ras, shape_kji, name).astype(np.float32, copy=False)
        for name, vol in pred.maps.items()
    }
    names = class_names_of(model, mask_kji)
    if model is None:
        names = {k: (labels or {}).get(str(k), v) for k, v in names.items()}
    return SegmentationResult(
        prediction_id=result.id,
        model=result.model,
        version=result.version,
        method=pred.method,
        ijk_to_ras=np.asarray(ijk_to_ras, dtype=np.float64),
        mask_kji=mask_kji,
        maps_kji=maps_kji,
        class_names=names,
        ranking=result.review,
        timings=dict(result.timings),
        calibrated=calibrated_outputs(pred.info, pred.probabilities, shape_kji),
    )


class UQSegSession:
    """Blocking calls to one backend, in Slicer's array conventions (safe to call from a worker thread).

    Parameters
    ----------
    backend : Backend
        ``RemoteBackend`` for a server, ``LocalBackend`` for in-process use.
    url : str
        Shown in messages.
    """

    def __init__(self, backend: Backend, url: str = "local") -> None:
        self.backend = backend
        self.url = url

    @classmethod
    def connect(cls, url: str, token: str | None = None, timeout: float = 10.0) -> UQSegSession:
        """Open a session on a server and check it answers (health, token and protocol version).

        Raises
        ------
        InputError
            Empty URL.
        UQSegError
            The client's typed errors: server down, bad token, protocol version mismatch.
        """
        from napari_uqseg.client.output_download import ROI_MARGIN  # imported late: module load must not need it
        from napari_uqseg.client.remote import RemoteBackend

        url = (url or "").strip()
        if not url:
            raise InputError("server URL", "is empty; enter e.g. http://127.0.0.1:8765")
        session = cls(RemoteBackend(url, token=token or None, timeout=timeout, roi_margin=ROI_MARGIN), url)
        session.info()  # fail now, with the client's clear error, rather than at the first prediction
        return session

    def info(self) -> ServerInfo:
        """Capabilities, models and methods of the server."""
        caps = self.backend.capabilities()
        return ServerInfo(
            url=self.url,
            protocol=str(caps.get("protocol", caps.get("protocol_version", "?"))),
            device=str(caps.get("device", "?")),
            models=tuple(self.backend.models()),
            methods=tuple(self.backend.methods()),
        )

    def models(self) -> list[ModelSummary]:
        """Named models with their versions."""
        return self.backend.models()

    def methods(self) -> list[MethodInfo]:
        """Uncertainty methods the server knows."""
        return self.backend.methods()

    def predict(
        self,
        image_kji: np.ndarray,
        ijk_to_ras: np.ndarray,
        model: str,
        version: str | None = None,
        options: dict[str, Any] | None = None,
        progress: Progress = no_progress,
        source: str = "volume",
    ) -> SegmentationResult:
        """Segment a Slicer volume array; every output comes back in KJI on the same grid.

        Parameters
        ----------
        image_kji : np.ndarray
            ``(K, J, I)`` intensities from ``slicer.util.arrayFromVolume``.
        ijk_to_ras : np.ndarray
            ``(4, 4)`` from the node's ``GetIJKToRASMatrix``; sent as the NIfTI affine.
        model, version, options
            See ``Backend.predict``; ``options["axis"]`` defaults to 2 (K) here.
        source : str
            Node name for error messages.

        Raises
        ------
        InputError
            Bad image, or outputs not on the input grid.
        CancelledError
            ``progress`` raised it.
        """
        image = volume_from_kji(image_kji, ijk_to_ras, source)
        image = Volume(check_image_array(image.array, source), image.affine)
        options = {"axis": 2, **(options or {})}  # rank slices along K: axial for the usual RAS-aligned scan
        result = self.backend.predict(image, model, version, options, progress)
        return self.result_on_grid(result, image, tuple(np.shape(image_kji)))

    def result_on_grid(self, result: Any, image: Volume, shape_kji: tuple[int, ...]) -> SegmentationResult:
        """A client ``PredictionResult`` in KJI order on the grid of ``image`` (InputError if it is not)."""
        summary = next((m for m in self.backend.models() if m.name == result.model), None)
        return result_in_kji(result, image.affine, shape_kji, summary)

    def submit_correction(
        self,
        result: SegmentationResult,
        label_kji: np.ndarray,
        ijk_to_ras: np.ndarray,
        review: ReviewRanking | None = None,
        client_key: str | None = None,
    ) -> str:
        """Send the edited label map (with the review states) for ``result``; returns the correction id.

        With regions marked done, the correction carries the voxels reviewed (their boxes and every edited
        voxel, ``core.reviewed.reviewed_mask``) and the fine-tune trains on those only; else the whole case.
        The default ``client_key`` hashes the prediction id, the label voxels and the review states, so pressing
        Submit twice (or a retry after a timeout) stores one correction.

        Raises
        ------
        InputError
            Label map on another grid than the prediction, empty, or with non-integer labels.
        """
        label = volume_from_kji(label_kji, ijk_to_ras, "corrected segmentation")
        kji_from_volume(label, result.ijk_to_ras, result.mask_kji.shape, "corrected segmentation")  # grid check
        label = Volume(check_label_array(label.array, "corrected segmentation"), label.affine)
        review = review or result.ranking
        reviewed = reviewed_mask(review, label.array, result.mask_volume().array)
        reviewed_volume = None if reviewed is None else Volume(reviewed, label.affine)
        if client_key is None:
            digest = hashlib.sha256(result.prediction_id.encode())
            digest.update(np.ascontiguousarray(label.array).tobytes())
            digest.update(json.dumps(review.to_dict(), sort_keys=True).encode())
            client_key = digest.hexdigest()[:32]
        return self.backend.submit_correction(result.prediction_id, label, review, client_key, reviewed_volume)

    def start_finetune(self, model: str, params: dict[str, Any] | None = None) -> JobStatus:
        """Start fine-tuning ``model`` on the submitted corrections (a new version; the served one stays)."""
        return self.backend.start_job("finetune", model, params)

    def watch_job(self, job_id: str) -> JobWatch:
        """A job's watch: its ``step()`` asks for the status once, without sleeping (for the GUI's poll timer)."""
        return JobWatch(self.backend, job_id)

    def cancel_job(self, job_id: str) -> JobStatus:
        """Ask the server to stop a job."""
        return self.backend.cancel_job(job_id)

    def switch_version(self, model: str, version: str) -> ModelSummary:
        """Serve ``version`` of ``model`` from now on."""
        return self.backend.promote(model, version)

    def rollback(self, model: str) -> ModelSummary:
        """Serve the previously served version again."""
        return self.backend.rollback(model)

    def close(self) -> None:
        """Release the backend's connections."""
        self.backend.close()


class CaseReview:
    """Review state of one result: rows, region states, segment statuses (main thread only).

    Parameters
    ----------
    result : SegmentationResult
        The prediction under review; its server ranking is the default queue.
    saved_states : str, optional
        JSON from the segmentation node attribute (:data:`review_table.REGION_STATES_ATTRIBUTE`).
    """

    def __init__(self, result: SegmentationResult, saved_states: str | None = None) -> None:
        self.result = result
        self.mask = result.mask_volume()
        self.ranking = result.ranking
        restore_states(self.ranking, saved_states)

    def rerank(self, map_name: str) -> None:
        """Build the queue from another uncertainty map (states start over: its regions differ)."""
        if map_name != self.ranking.map_name:
            self.ranking = rank_map(self.result.map_volumes(), self.mask, map_name, axis=self.result.ranking.axis)

    def rows(self) -> list[ReviewRow]:
        """Table rows, most uncertain first."""
        return review_rows(self.ranking, self.mask)

    def set_state(self, region_id: int, state: str) -> dict[int, str]:
        """Mark a region ``todo``/``done``/``flagged``; returns the new segment status per class label."""
        self.ranking.set_state(region_id, state)
        return self.statuses()

    def statuses(self) -> dict[int, str]:
        """Slicer segment status per foreground class label."""
        return segment_statuses(self.rows(), sorted(self.result.class_names))

    def encoded_states(self) -> str:
        """JSON to store on the segmentation node."""
        return encode_states(self.ranking)

    def progress_text(self) -> str:
        """``"3 of 12 regions reviewed"``."""
        return f"{self.ranking.reviewed_count()} of {len(self.ranking.regions)} regions reviewed"


def _mean_dice(figures: dict[str, Any] | None) -> str:
    value = (figures or {}).get("mean_dice")
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def finetune_report(result: dict[str, Any]) -> str:
    """One line for the job status: held-back and validation Dice before -> after, and the recommendation.

    ``result`` is a finished fine-tune job's result (the new version's metrics). Held-back corrections were
    never trained on; the validation cases are the ones the original training held out.
    """
    parts = []
    if result.get("after"):
        n = len(result["after"].get("dice", {}))
        parts.append(f"held-back Dice ({n}) {_mean_dice(result.get('before'))} -> {_mean_dice(result['after'])}")
    regression = result.get("regression") or {}
    if regression.get("after"):
        n = len(regression["after"].get("dice", {}))
        before, after = _mean_dice(regression.get("before")), _mean_dice(regression["after"])
        parts.append(f"validation Dice ({n}) {before} -> {after}")
    verdict = result.get("recommendation") or {}
    if verdict:
        parts.append(str(verdict.get("reason", "promote" if verdict.get("promote") else "don't promote")))
    parts.append(partial_corrections_text(result.get("loss_mask")))
    parts.append(recalibration_text(result.get("uq_calibration")))  # refitted, or why the version has none
    return "; ".join(p for p in parts if p)


def job_status_text(status: JobStatus) -> str:
    """The job line of the panel: kind, id, state, time left, message; a finished fine-tune adds its report."""
    eta = f", {status.eta_s:.0f} s left" if status.eta_s else ""
    text = f"{status.kind} {status.id}: {status.state}{eta} {status.message or status.error}"
    if status.state == "succeeded" and status.kind == "finetune":
        text = f"{text} {finetune_report(status.result)}"
    return text
