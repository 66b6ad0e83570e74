"""Ledger and job races: idempotent correction retries, failed COMMITs, job version + result, pids, attempts."""

from __future__ import annotations

import base64
import gzip
import hashlib
import subprocess
import sys
import threading

import nibabel as nib
import numpy as np
import psutil
import pytest
import requests

from napari_uqseg.core import durable
from napari_uqseg.core.errors import ConflictError
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.server.executor import RUNNER_MODULE, recover
from napari_uqseg.server.job_runner import run_job
from napari_uqseg.server.ledger import MAX_ATTEMPTS, Ledger
from napari_uqseg.testing.server import start_server, upload_and_predict

TIMEOUT = (5, 120)


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    handle = start_server(tmp_path_factory.mktemp("races") / "data", {"tiny_det": tiny_models["tiny_det"]})
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def case(http):
    _, label, _, summary = upload_and_predict(http, seed=3)
    return summary["id"], label


def label_b64(array: np.ndarray, affine: np.ndarray) -> str:
    raw = gzip.compress(nib.Nifti1Image(array.astype(np.uint8), affine).to_bytes())
    return base64.b64encode(raw).decode()


def test_racing_retries_store_one_correction(server, http, case):
    pid, label = case
    body = {"prediction": pid, "label": label_b64(label.array, label.affine), "client_key": "race-key-1"}
    answers: list[requests.Response] = []
    barrier = threading.Barrier(4)

    def submit() -> None:
        barrier.wait()
        answers.append(http("POST", "/v1/corrections", json=body))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 201], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    rows = Ledger(server.data_dir / "ledger.sqlite").query("SELECT id FROM corrections WHERE client_key='race-key-1'")
    assert len(rows) == 1
    files = {p.name for p in (server.data_dir / "corrections").glob("*.nii.gz")}
    assert f"{rows[0]['id']}.nii.gz" in files
    stored = {r["id"] for r in Ledger(server.data_dir / "ledger.sqlite").query("SELECT id FROM corrections")}
    assert {f.removesuffix(".nii.gz") for f in files} == stored  # no orphan file


def test_reused_key_with_another_label_is_409(http, case):
    pid, label = case
    body = {"prediction": pid, "label": label_b64(label.array, label.affine), "client_key": "race-key-2"}
    assert http("POST", "/v1/corrections", json=body).status_code == 201
    other = label.array.copy()
    other[other == 2] = 1
    body["label"] = label_b64(other, label.affine)
    r = http("POST", "/v1/corrections", json=body)
    assert r.status_code == 409 and "client_key" in r.json()["error"]["source"], r.text


def test_failed_commit_is_rolled_back(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    db = ledger._connection()
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE child (pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(Exception, match="FOREIGN KEY"), ledger.transaction() as tx:
        tx.execute("INSERT INTO child VALUES (42)")  # only the COMMIT notices the missing parent
    assert not db.in_transaction
    with ledger.transaction() as tx:  # the connection is usable again
        tx.execute("INSERT INTO parent VALUES (1)")
    assert ledger.query("SELECT COUNT(*) FROM child")[0][0] == 0


def claimed_job(store: DataDir, kind: str = "evaluate") -> str:
    jid, _ = store.ledger.create_job(kind, "tiny_det", {})
    assert store.ledger.claim_next()["id"] == jid
    return jid


def test_cancel_after_training_leaves_no_version(tiny_models, tmp_path):
    store = DataDir(tmp_path / "data")
    store.add_model_version("tiny_det", tiny_models["tiny_det"])
    jid = claimed_job(store, "finetune")
    store.ledger.request_cancel(jid)
    with pytest.raises(ConflictError):
        store.add_model_version("tiny_det", tiny_models["tiny_det"], parent="v1", job=(jid, {"model": "tiny_det"}))
    assert [v.version for v in store.ledger.versions("tiny_det")] == ["v1"]
    assert not (store.root / "models" / "tiny_det" / "v2").exists()


def test_version_and_job_result_are_committed_together(tiny_models, tmp_path):
    store = DataDir(tmp_path / "data")
    store.add_model_version("tiny_det", tiny_models["tiny_det"])
    jid = claimed_job(store, "finetune")
    store.add_model_version("tiny_det", tiny_models["tiny_det"], parent="v1", job=(jid, {"model": "tiny_det"}))
    job = store.ledger.job(jid)
    assert job.state == "succeeded" and job.result["version"] == "v2"


def test_job_process_records_its_own_pid_and_skips_an_unclaimed_job(tmp_path):
    store = DataDir(tmp_path / "data")
    jid, _ = store.ledger.create_job("evaluate", "tiny_det", {})
    assert run_job(jid, store.root) == {}  # still QUEUED: not this process's to run
    assert store.ledger.job_row(jid)["state"] == "queued" and store.ledger.job_row(jid)["pid"] is None


def test_recovery_kills_a_job_process_started_before_its_pid_was_recorded(tmp_path):
    store = DataDir(tmp_path / "data")
    jid = claimed_job(store)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", RUNNER_MODULE, jid])
    try:
        assert store.ledger.job_row(jid)["pid"] is None  # the crash came between Popen and any pid record
        assert recover(store) == [jid]
        orphan.wait(timeout=30)  # killed (psutil reaped it, so the exit code is not ours to read)
        assert not psutil.pid_exists(orphan.pid)
        assert store.ledger.job_row(jid)["state"] == "queued"
    finally:
        if psutil.pid_exists(orphan.pid):
            orphan.kill()


def test_attempts_are_capped(tmp_path):
    store = DataDir(tmp_path / "data")
    jid, _ = store.ledger.create_job("evaluate", "tiny_det", {})
    for _ in range(MAX_ATTEMPTS):
        assert store.ledger.claim_next()["id"] == jid
        store.ledger.requeue(jid)  # the server stopped during the attempt
    assert store.ledger.claim_next() is None
    row = store.ledger.job_row(jid)
    assert row["state"] == "failed" and "attempts" in row["error"]


def test_renames_are_followed_by_a_directory_fsync(tiny_models, tmp_path, monkeypatch):
    synced: list[str] = []
    real = durable.fsync_dir
    monkeypatch.setattr(durable, "fsync_dir", lambda path: (synced.append(str(path)), real(path)))
    store = DataDir(tmp_path / "data")
    image, _ = synthetic_case((8, 8, 8), seed=1)
    data = nifti_bytes(image, dtype=np.float32)
    store.put_image(hashlib.sha256(data).hexdigest(), data)
    assert str(store.root / "images") in synced
    synced.clear()
    store.add_model_version("tiny_det", tiny_models["tiny_det"])
    folder = store.root / "models" / "tiny_det"
    assert str(folder / ".v1.staging") in synced  # the copied folder itself, before its rename
    assert str(folder) in synced  # the rename into place
