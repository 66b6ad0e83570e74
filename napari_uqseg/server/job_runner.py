"""One job in its own process: ``python -m napari_uqseg.server.job_runner <job_id> --data-dir DIR``.

Reads the job row, runs ``finetune``, ``train``, ``evaluate`` or ``triage``, writes progress to the ledger while it
runs and the result when it ends. The same ``run_job`` is what the Ray executor ships to a worker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from napari_uqseg.core.errors import ConflictError, InputError
from napari_uqseg.core.wire import NAME_PATTERN, VERSION_PATTERN, check_id
from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.server.device_lease import (
    DeviceLease,
    JobGate,
    LeasePolicy,
    add_policy_arguments,
    apply_job_limits,
    policy_from_args,
)

JOB_KINDS = ("finetune", "train", "evaluate", "triage")


class LedgerProgress:
    """A ``Progress`` callback writing (at most every ``every_s``) fraction, message and ETA to the ledger.

    Each call is a step boundary: ``between_steps()`` (the device lease's pause point) runs after it, and
    ``notes`` (e.g. the lease's pauses) are kept with the job's result.
    """

    def __init__(self, store: DataDir, job_id: str, every_s: float = 0.5) -> None:
        self.store, self.job_id, self.every_s = store, job_id, every_s
        self._last = 0.0
        self._fraction = 0.0
        self._started = time.perf_counter()
        self._first: tuple[float, float] | None = None  # (time, fraction) at the first report: resumed runs start late
        self.between_steps: Any = None
        self.notes: dict[str, Any] = {}

    def __call__(self, done: float, total: float, message: str) -> None:
        self._report(done, total, message)
        if self.between_steps is not None:
            self.between_steps()

    def say(self, message: str) -> None:
        """Replace the job's message now (fraction unchanged, no ETA)."""
        self._last = time.perf_counter()
        self.store.ledger.report(self.job_id, self._fraction, message, None)

    def _report(self, done: float, total: float, message: str) -> None:
        now = time.perf_counter()
        fraction = min(1.0, max(0.0, done / total)) if total else 0.0
        self._fraction = fraction
        if self._first is None:
            self._first = (now, fraction)
        if now - self._last < self.every_s and fraction < 1.0:
            return
        self._last = now
        t0, f0 = self._first
        eta = (now - t0) / (fraction - f0) * (1.0 - fraction) if fraction > f0 else None
        self.store.ledger.report(self.job_id, fraction, message, eta)


def corrected_cases(store: DataDir, model: str, ids: list[str] | None) -> list[Any]:
    """The model's corrections (all, or ``ids``) as ``CorrectedCase`` (raw image, corrected label and, where
    the correction has one, its reviewed mask)."""
    from napari_uqseg.engine.finetune import CorrectedCase

    rows = store.ledger.corrections(model, ids)
    if not rows:
        raise InputError("corrections", f"model {model!r} has no submitted corrections")
    return [
        CorrectedCase(
            r["id"],
            store.image(r["image"]),
            store.correction(r["id"]),
            None if r.get("reviewed_voxels") is None else store.reviewed(r["id"]),
        )
        for r in rows
    ]


def _version_param(store: DataDir, model: str, params: dict[str, Any]) -> str:
    version = params.get("version") or store.ledger.serving(model)
    return check_id(version, "version", VERSION_PATTERN)


def run_finetune(store: DataDir, job: dict[str, Any], device: str, progress: LedgerProgress) -> dict[str, Any]:
    from napari_uqseg.engine.finetune import FinetuneOptions, finetune

    model, params = job["model"], dict(job["params"])
    parent = _version_param(store, model, params)
    cases = corrected_cases(store, model, params.get("corrections"))
    options = FinetuneOptions.from_dict(params.get("options", {}))
    job_dir = store.job_dir(job["id"])
    staged = job_dir / "model"
    report = finetune(store.model_dir(model, parent), cases, staged, job_dir / "work", options, device, progress)
    metrics = {
        "before": report["before"],  # on the held-back corrections, never trained on
        "after": report["after"],
        "regression": report["regression"],  # on the original validation cases
        "recommendation": report["recommendation"],
        "held_back": report["held_back"],
        "finetuned_on": report["trained_on"],
        "replay": report["replay"],
        "uq_calibration": report["uq_calibration"],  # refitted on held-back + validation cases, or why not
        "loss_mask": report["loss_mask"],
    }
    result = {
        "model": model,
        "parent": parent,
        "resumed_from_step": report["resumed_from_step"],
        "seconds": report["seconds"],
        **progress.notes,
    }
    version = store.add_model_version(
        model, staged, parent=parent, metrics=metrics, move=True, job=(job["id"], result), actor=job["actor"]
    )  # the version row and the job's success are one transaction
    shutil.rmtree(job_dir / "work", ignore_errors=True)
    return {**result, "version": version.version, **version.metrics}


def run_train(store: DataDir, job: dict[str, Any], device: str, progress: LedgerProgress) -> dict[str, Any]:
    from napari_uqseg.engine.make_model import train

    params = job["params"]
    dataset = store.dataset_dir(str(params.get("dataset", "")))
    job_dir = store.job_dir(job["id"])
    staged = job_dir / "model"
    train(str(params["method"]), dataset, staged, params.get("config", {}), None, device, progress, job_dir / "work")
    result = {"model": job["model"], "dataset": dataset.name, **progress.notes}
    version = store.add_model_version(job["model"], staged, move=True, job=(job["id"], result), actor=job["actor"])
    return {**result, "version": version.version}


def run_evaluate(store: DataDir, job: dict[str, Any], device: str, progress: LedgerProgress) -> dict[str, Any]:
    from napari_uqseg.engine.finetune import evaluate_cases
    from napari_uqseg.engine.model_folder import load_model

    model, params = job["model"], job["params"]
    version = _version_param(store, model, params)
    cases = corrected_cases(store, model, params.get("corrections"))
    method = load_model(store.model_dir(model, version), device)
    return {"model": model, "version": version, **evaluate_cases(method, cases, progress)}


def run_triage(store: DataDir, job: dict[str, Any], device: str, progress: LedgerProgress) -> dict[str, Any]:
    from napari_uqseg.server.triage_job import run_triage as triage_study

    return triage_study(store, job, device, progress)


RUNNERS = {"finetune": run_finetune, "train": run_train, "evaluate": run_evaluate, "triage": run_triage}


def run_job(
    job_id: str, data_dir: str | Path, device: str = "cpu", policy: LeasePolicy | None = None
) -> dict[str, Any]:
    """Run one job to its end and record the outcome in the ledger (also the Ray task body).

    With ``policy`` (the local executor) the job shares the device with the server's predictions through
    the device lease (``server.device_lease``); without (Ray) it has its device to itself.

    Returns
    -------
    dict
        The job result (also stored in the ledger); failures are recorded and re-raised.
    """
    from napari_uqseg.engine.device import resolve_device

    store = DataDir(data_dir)
    job = store.ledger.job_row(check_id(job_id, "job id"))
    check_id(job["model"], "model", NAME_PATTERN)
    if not store.ledger.set_pid(job_id, os.getpid()):  # the child records itself: no window without a pid
        return {}  # re-queued or cancelled between the claim and this start: nothing to do
    progress = LedgerProgress(store, job_id)
    gate = None
    try:
        device = str(resolve_device(device))
        gate = share_device(store, job_id, device, policy, progress)
        result = {**RUNNERS[job["kind"]](store, job, device, progress), **progress.notes}
    except ConflictError:
        return {}  # cancelled while finishing: the executor records the cancellation
    except BaseException as exc:
        store.ledger.finish(job_id, "failed", error=f"{exc.__class__.__name__}: {exc}")
        raise
    finally:
        if gate is not None:
            gate.close()
    store.ledger.finish(job_id, "succeeded", result)
    return result


def share_device(
    store: DataDir, job_id: str, device: str, policy: LeasePolicy | None, progress: LedgerProgress
) -> JobGate | None:
    """Cap the job's threads and device memory and pause it while predictions hold the device's lease.

    Returns the ``JobGate`` (``None`` without ``policy``).
    """
    if policy is None:
        return None
    limits = apply_job_limits(device, policy)
    print(f"job {job_id}: device {device}, {limits}, {policy.to_dict()}", flush=True)
    gate = JobGate(DeviceLease(store.root, device), policy, job_id, progress.say, progress.notes)
    progress.between_steps = gate.between_steps
    return gate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_uqseg.server.job_runner")
    parser.add_argument("job_id")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--share-device", action="store_true", help="use the device lease (local executor)")
    add_policy_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_job(args.job_id, args.data_dir, args.device, policy_from_args(args) if args.share_device else None)
    except Exception:  # noqa: BLE001  (recorded in the ledger by run_job; the log gets the traceback)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
