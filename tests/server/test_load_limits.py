"""Bounded load on a real server: request and queue caps (503 + Retry-After), cost cap, config checks at submit,
long-polls that hold no worker thread, free-space checks (507) and retention."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import nibabel as nib
import numpy as np
import pytest
import requests

from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.server.device_worker import DeviceWorker
from napari_uqseg.server.executor import acquire_lock
from napari_uqseg.server.load_limits import BusyError, LoadLimits
from napari_uqseg.server.retention import DAY_S, RetentionPolicy, prune
from napari_uqseg.server.saturation import admit_prediction
from napari_uqseg.testing.server import start_server, upload_and_predict

TIMEOUT = (5, 120)
MAX_REQUESTS = 50
LONG_POLLS = 45  # more than Starlette's 40 worker threads


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    """A server whose job executor cannot start (the test holds its lock): jobs stay QUEUED."""
    data = tmp_path_factory.mktemp("load") / "data"
    data.mkdir()
    lock = acquire_lock(data / "executor.lock")
    limits = ["--max-requests", str(MAX_REQUESTS), "--max-queued-jobs", "2", "--max-forward-passes", "200"]
    handle = start_server(data, {"tiny_det": tiny_models["tiny_det"]}, extra_args=limits)
    yield handle
    handle.stop()
    lock.close()


@pytest.fixture(scope="module")
def http(server):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
    yield lambda method, path, **kw: session.request(method, server.url + path, timeout=TIMEOUT, **kw)
    session.close()


@pytest.fixture(scope="module")
def corrected(http):
    """``(image sha, prediction id)`` with one correction stored."""
    _, label, sha, summary = upload_and_predict(http, seed=9)
    raw = gzip.compress(nib.Nifti1Image(label.array.astype(np.uint8), label.affine).to_bytes())
    body = {"prediction": summary["id"], "label": base64.b64encode(raw).decode()}
    assert http("POST", "/v1/corrections", json=body).status_code == 201
    return sha, summary["id"]


@pytest.mark.parametrize(
    "options",
    [{"iterations": "5"}, {"lr_factor": "fast"}, {"iterations": True}, {"batch_size": 2.5}, {"epochs": 3}, [1]],
)
def test_finetune_options_are_checked_at_submit(http, corrected, options):
    r = http("POST", "/v1/jobs", json={"kind": "finetune", "model": "tiny_det", "params": {"options": options}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["source"].startswith("params.options")


def test_train_config_is_checked_at_submit(server, http):
    (server.data_dir / "datasets" / "tiny").mkdir(exist_ok=True)
    for config in ({"train": {"iterations": "many"}}, {"net": {"channels": [4, 99999]}}, {"colour": {}}):
        params = {"method": "deterministic", "dataset": "tiny", "config": config}
        r = http("POST", "/v1/jobs", json={"kind": "train", "model": "new_model", "params": params})
        assert r.status_code == 400, (config, r.text)


def test_prediction_cost_is_capped(http, corrected):
    r = http("POST", "/v1/predictions", json={"image": corrected[0], "model": "tiny_det", "options": {"overlap": 0.9}})
    assert r.status_code == 400 and "forward passes" in r.json()["error"]["message"], r.text


def test_queued_jobs_are_capped_with_retry_after(http, corrected):
    body = {"kind": "evaluate", "model": "tiny_det"}
    assert [http("POST", "/v1/jobs", json=body).status_code for _ in range(2)] == [202, 202]
    r = http("POST", "/v1/jobs", json=body)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
    assert http("GET", "/v1/health").json()["queued_jobs"] == 2


def test_long_polls_hold_no_worker_thread(http, corrected):
    jid = http("GET", "/v1/jobs").json()[0]["id"]  # QUEUED for good: the executor is locked out
    with ThreadPoolExecutor(LONG_POLLS) as pool:
        polls = [pool.submit(http, "GET", f"/v1/jobs/{jid}?wait=30") for _ in range(LONG_POLLS)]
        deadline = time.monotonic() + 20
        while http("GET", "/v1/health").json()["requests_in_flight"] < LONG_POLLS and time.monotonic() < deadline:
            time.sleep(0.1)
        r = http("GET", "/v1/models")  # needs a worker thread
        assert r.status_code == 200
        assert not any(p.done() for p in polls)  # answered while every long-poll still waits
        for p in polls:
            assert p.result().json()["state"] == "queued"


def slow_upload(server) -> socket.socket:
    """A PUT whose body never finishes: it stays in flight until the socket closes."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (
        f"PUT /v1/images/{'0' * 64} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    )
    sock.sendall(head.encode() + b"\0" * 10)
    return sock


def test_requests_beyond_the_limit_get_503_and_health_still_answers(server, http):
    sockets = [slow_upload(server) for _ in range(MAX_REQUESTS)]
    try:
        deadline = time.monotonic() + 20
        while http("GET", "/v1/health").json()["requests_in_flight"] < MAX_REQUESTS and time.monotonic() < deadline:
            time.sleep(0.1)
        r = http("GET", "/v1/models")
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
        health = http("GET", "/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "busy"
    finally:
        for sock in sockets:
            sock.close()
    deadline = time.monotonic() + 20
    while http("GET", "/v1/health").json()["requests_in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http("GET", "/v1/models").status_code == 200
    assert not list((server.data_dir / "images").glob(".upload-*"))  # the abandoned uploads left nothing


def test_queued_predictions_are_capped():
    worker = DeviceWorker("cpu")
    release = threading.Event()
    try:
        worker.submit(release.wait)  # the device is busy ...
        deadline = time.monotonic() + 10
        while worker.queued() > 0 and time.monotonic() < deadline:  # (once the worker has taken it)
            time.sleep(0.01)
        worker.submit(lambda: None)  # ... and one prediction waits
        assert worker.queued() == 1
        with pytest.raises(BusyError, match="wait for the device"):
            admit_prediction(worker, LoadLimits(max_queued_predictions=1))
        admit_prediction(worker, LoadLimits(max_queued_predictions=2))
    finally:
        release.set()
        worker.close()


def test_upload_is_refused_with_507_when_the_disk_is_low(tiny_models, tmp_path):
    reserve = str(2**40 // 2**20)  # a reserve of 1 TiB: more than this disk has free
    handle = start_server(tmp_path / "data", {"tiny_det": tiny_models["tiny_det"]}, extra_args=["--min-free-mb", "0"])
    handle.stop()  # the model is imported; restart with the reserve
    handle.extra_args = ["--min-free-mb", reserve]
    handle.start()
    try:
        image, _ = synthetic_case((16, 16, 16), seed=2)
        data = nifti_bytes(image, dtype=np.float32)
        r = requests.put(
            f"{handle.url}/v1/images/{hashlib.sha256(data).hexdigest()}",
            data=data,
            headers={"Authorization": f"Bearer {handle.token}"},
            timeout=TIMEOUT,
        )
        assert r.status_code == 507 and "MiB free" in r.json()["error"]["message"], r.text
        assert os.listdir(handle.data_dir / "images") == []
    finally:
        handle.stop()


def test_retention_removes_old_and_excess_predictions_and_old_failed_jobs(tmp_path):
    store = DataDir(tmp_path / "data")
    now = time.time()
    for i, age_days in enumerate([40, 10, 5, 1]):
        folder = store.prediction_dir(f"{i:032x}")
        folder.mkdir()
        (folder / "mask.nii.gz").write_bytes(b"\0" * 1024 * 1024)
        os.utime(folder, (now - age_days * DAY_S, now - age_days * DAY_S))
    old_job, _ = store.ledger.create_job("evaluate", "m", {})
    store.ledger.finish(old_job, "failed", error="boom")
    store.job_dir(old_job).mkdir()
    store.ledger.query("SELECT 1")  # (the job's 'updated' time is now: make it old below)
    with store.ledger.transaction() as db:
        db.execute("UPDATE jobs SET updated=? WHERE id=?", (now - 30 * DAY_S, old_job))
    removed = prune(store, RetentionPolicy(prediction_days=30, prediction_gb=2.5 / 1024, failed_job_days=14), now)
    left = sorted(p.name for p in (store.root / "predictions").iterdir())
    assert removed["predictions"] == 2 and left == [f"{2:032x}", f"{3:032x}"]  # 40 d old, then the oldest over 2.5 MiB
    assert removed["jobs"] == 1 and not store.job_dir(old_job).exists()
