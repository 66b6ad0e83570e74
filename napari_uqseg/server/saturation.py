"""Admission at the load bounds (503 beyond them) and the saturation figures ``/v1/health`` reports."""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any

from napari_uqseg.server.device_lease import lease_report
from napari_uqseg.server.disk_guard import MiB, free_bytes
from napari_uqseg.server.load_limits import BusyError, LoadLimits

if TYPE_CHECKING:
    from napari_uqseg.server.device_worker import DeviceWorker
    from napari_uqseg.server.ledger import Ledger
    from napari_uqseg.server.service import Service


def admit_prediction(worker: DeviceWorker, load: LoadLimits) -> None:
    """Raise ``BusyError`` when ``max_queued_predictions`` already wait for the device."""
    queued = worker.queued()
    if queued >= load.max_queued_predictions:
        raise BusyError(
            "predictions",
            f"{queued} predictions wait for the device (limit {load.max_queued_predictions})",
            load.retry_after_s,
        )


def wait_for_device(future: concurrent.futures.Future, load: LoadLimits) -> Any:
    """The future's result, or ``BusyError`` after ``prediction_wait_s`` (the queued work is cancelled)."""
    try:
        return future.result(timeout=load.prediction_wait_s)
    except concurrent.futures.TimeoutError:
        future.cancel()  # still queued: it never runs; already running: its result is dropped
        raise BusyError(
            "predictions",
            f"the device did not get to this prediction within {load.prediction_wait_s:.0f} s",
            load.retry_after_s,
        ) from None


def queued_jobs(ledger: Ledger) -> int:
    return int(ledger.query("SELECT COUNT(*) FROM jobs WHERE state='queued'")[0][0])


def admit_job(ledger: Ledger, load: LoadLimits) -> None:
    """Raise ``BusyError`` when ``max_queued_jobs`` jobs are already queued."""
    queued = queued_jobs(ledger)
    if queued >= load.max_queued_jobs:
        raise BusyError("jobs", f"{queued} jobs are queued (limit {load.max_queued_jobs})", load.retry_after_s * 12)


def device_memory(device: str) -> dict[str, int] | None:
    """``{"free_mb", "total_mb"}`` of a CUDA device, ``None`` on CPU."""
    if not device.startswith("cuda"):
        return None
    import torch

    free, total = torch.cuda.mem_get_info(torch.device(device))
    return {"free_mb": int(free // MiB), "total_mb": int(total // MiB)}


def saturation(service: Service) -> dict[str, Any]:
    """Queue depths, requests in flight, free disk and device memory, and whether a bound is reached;
    ``device_lease``: who holds the device, predictions waiting, and the running job's pauses."""
    load, requests = service.load, service.requests
    queued_predictions = service.worker.queued()
    jobs = queued_jobs(service.store.ledger)
    free_mb = free_bytes(service.store.root) // MiB
    busy = (
        queued_predictions >= load.max_queued_predictions
        or jobs >= load.max_queued_jobs
        or requests.in_flight >= requests.limit
        or free_mb < load.min_free_mb
    )
    return {
        "busy": busy,
        "queued_predictions": queued_predictions,
        "queued_jobs": jobs,
        "requests_in_flight": requests.in_flight,
        "requests_refused": requests.refused,
        "free_disk_mb": int(free_mb),
        "device_memory": device_memory(service.device),
        "device_lease": lease_report(service.worker.lease, service.worker.pending()),
    }
