"""Crash safety: acknowledged corrections and running fine-tunes survive ``kill -9`` of the server; cancel is quick."""

from __future__ import annotations

import time

import psutil
import pytest

from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.server.ledger import Ledger
from napari_uqseg.testing.polling import wait_for
from napari_uqseg.testing.server import start_server


@pytest.fixture()
def server(tiny_models, tmp_path):
    handle = start_server(tmp_path / "data", tiny_models)
    yield handle
    handle.stop()


def corrected(backend: RemoteBackend, key: str) -> str:
    image, label = synthetic_case((24, 24, 24), seed=41)
    prediction = backend.predict(image, "tiny_det")
    return backend.submit_correction(prediction.id, label, prediction.review, client_key=key)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_acknowledged_correction_survives_kill9(server):
    backend = RemoteBackend(server.url, server.token)
    cid = corrected(backend, "durable-key")
    server.kill9()  # immediately after the 201
    rows = Ledger(server.data_dir / "ledger.sqlite").corrections("tiny_det")
    assert [r["id"] for r in rows] == [cid]
    assert (server.data_dir / "corrections" / f"{cid}.nii.gz").stat().st_size > 0
    server.start()
    backend = RemoteBackend(server.url, server.token)
    assert corrected(backend, "durable-key") == cid  # the retry finds it: stored once, not twice
    job = backend.start_job("evaluate", "tiny_det", {"corrections": [cid]})
    status = backend.wait_job(job.id, timeout=120)
    assert status.state == "succeeded", status.error
    assert set(status.result["dice"]) == {cid}


def test_finetune_resumes_after_kill9(server):
    backend = RemoteBackend(server.url, server.token)
    corrected(backend, "resume-key")
    job = backend.start_job("finetune", "tiny_det", {"options": {"iterations": 150, "checkpoint_every": 10}})
    ledger = Ledger(server.data_dir / "ledger.sqlite")
    work = server.data_dir / "jobs" / job.id / "work"
    wait_for(lambda: list(work.glob("*.resume.pt")), "a fine-tune checkpoint", timeout=240)
    row = ledger.job_row(job.id)
    assert row["state"] == "running" and 0 < row["progress"] < 1
    orphan = row["pid"]
    server.kill9()
    assert not gone(orphan)  # the job process outlives the crashed server ...
    # ... paused, so it cannot finish the fine-tune on its own while a slow machine restarts the server
    psutil.Process(orphan).suspend()
    server.start()
    wait_for(
        lambda: gone(orphan), "the orphaned job process to be killed", timeout=20
    )  # ... until the restart kills it
    backend = RemoteBackend(server.url, server.token)
    status = backend.wait_job(job.id, timeout=300)
    assert status.state == "succeeded", status.error
    assert status.attempts == 2
    assert status.result["resumed_from_step"] >= 10  # continued from its checkpoint, not from step 0
    assert status.result["version"] == "v2"
    assert next(m for m in backend.models() if m.name == "tiny_det").serving == "v1"


def test_cancel_stops_quickly_and_leaves_no_process(server):
    backend = RemoteBackend(server.url, server.token)
    corrected(backend, "cancel-key")
    job = backend.start_job("finetune", "tiny_det", {"options": {"iterations": 100000}})
    ledger = Ledger(server.data_dir / "ledger.sqlite")
    wait_for(lambda: backend.job(job.id).eta_s is not None, "the fine-tune to report progress and an ETA", timeout=240)
    assert 0 < backend.job(job.id).progress < 1
    proc = psutil.Process(ledger.job_row(job.id)["pid"])
    family = [proc, *proc.children(recursive=True)]
    start = time.monotonic()
    status = backend.cancel_job(job.id)
    status = backend.wait_job(job.id, timeout=10)
    assert status.state == "cancelled"
    assert time.monotonic() - start < 5
    wait_for(lambda: all(gone(p.pid) for p in family), "the job's processes to exit", timeout=5)
    assert [v.version for v in next(m for m in backend.models() if m.name == "tiny_det").versions] == ["v1"]
