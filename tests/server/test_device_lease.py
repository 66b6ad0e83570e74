"""Jobs and predictions share a device through a lease: predictions first, a job pauses between its steps.

A real ``uqseg serve`` on a loopback port runs a real fine-tune child process; the lease is the one the server's
device worker takes for each prediction (a lock file in the data folder), also taken here from the test process
as a second holder would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.server.device_lease import DeviceLease, JobGate, LeasePolicy, apply_job_limits
from napari_uqseg.server.device_worker import DeviceWorker
from napari_uqseg.testing.polling import wait_for
from napari_uqseg.testing.server import start_server

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the device lease uses flock (POSIX)")


def lease_report(server) -> dict:
    response = requests.get(f"{server.url}/v1/health", timeout=10)
    return response.json()["device_lease"]


@pytest.fixture()
def server(tiny_models, tmp_path):
    handle = start_server(tmp_path / "data", tiny_models, extra_args=["--job-max-pause-s", "600"])
    yield handle
    handle.stop()


def test_predictions_pause_a_running_finetune_which_then_finishes(server):
    backend = RemoteBackend(server.url, server.token)
    image, label = synthetic_case((24, 24, 24), seed=43)
    prediction = backend.predict(image, "tiny_det")
    backend.submit_correction(prediction.id, label, prediction.review, client_key="lease-key")
    # ends by its time budget (pauses count), so it runs through both phases below on a fast or a slow machine
    options = {"iterations": 100000, "time_budget_s": 45, "checkpoint_every": 1000}
    job = backend.start_job("finetune", "tiny_det", {"options": options})
    wait_for(
        lambda: (lease_report(server)["job"] or {}).get("steps", 0) > 0, "the fine-tune to take steps", timeout=240
    )
    # 1. the server's own predictions: the job notices one holding the device between two steps and pauses
    for _ in range(60):
        assert backend.predict(image, "tiny_mcd").id
        if (lease_report(server)["job"] or {}).get("pauses", 0) >= 1:
            break
    job_state = lease_report(server)["job"]
    assert job_state is not None and job_state["pauses"] >= 1, f"the job never paused for a prediction: {job_state}"
    steps = job_state["steps"]
    wait_for(lambda: lease_report(server)["job"]["steps"] > steps, "the job to resume", timeout=60)
    # 2. while the device is held, the job takes no step and its progress does not move
    held = DeviceLease(server.data_dir, "cpu")
    held.acquire()
    try:
        wait_for(lambda: lease_report(server)["job"]["paused"], "the job to pause", timeout=60)
        report = lease_report(server)
        assert report["holder"]["pid"] == os.getpid() and report["holder"]["role"] == "prediction"
        before, progress = report["job"]["steps"], backend.job(job.id).progress
        assert "paused" in backend.job(job.id).message
        time.sleep(1.0)
        assert lease_report(server)["job"]["steps"] == before
        assert backend.job(job.id).progress == progress
        # a prediction asked for now waits for the device, then runs while the job stays paused
        done: dict = {}
        thread = threading.Thread(target=lambda: done.update(p=backend.predict(image, "tiny_det")))
        thread.start()
    finally:
        held.release()
    thread.join(timeout=120)
    assert done["p"].id
    # 3. predictions stopped: the job resumes and finishes, and its result records the pauses
    status = backend.wait_job(job.id, timeout=600)
    assert status.state == "succeeded", status.error
    record = status.result["device_lease"]
    assert record["pauses"] >= 2 and record["paused_s"] >= 1.0 and record["steps"] > before
    assert lease_report(server)["job"] is None  # the finished job's record is gone
    assert lease_report(server)["holder"] is None


HOLDER = """
import sys, time
from napari_uqseg.server.device_lease import DeviceLease
lease = DeviceLease(sys.argv[1], "cpu")
lease.acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_killed_holder_never_leaves_the_lease_stuck(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline().strip() == b"held"
        lease = DeviceLease(tmp_path, "cpu")
        assert lease.busy() and lease.holder()["pid"] == child.pid
    finally:
        child.kill()  # SIGKILL: no clean-up runs in the holder
        child.wait()
    assert not lease.busy() and lease.holder() is None  # the stale holder record of a dead pid is ignored
    gate = JobGate(lease, LeasePolicy(job_max_pause_s=600), "job-1")
    gate.between_steps()
    assert gate.summary()["pauses"] == 0  # a job does not wait for a dead holder
    lease.acquire()  # and a new prediction takes the device at once
    assert lease.holder()["pid"] == os.getpid()
    assert {oct(p.stat().st_mode & 0o777) for p in (lease.lock_path, lease.holder_path)} == {"0o600"}
    lease.release()


def test_a_job_pause_is_bounded(tmp_path):
    holder = DeviceLease(tmp_path, "cpu")
    holder.acquire()
    try:
        gate = JobGate(DeviceLease(tmp_path, "cpu"), LeasePolicy(job_max_pause_s=0.2), "job-2")
        gate.between_steps()  # returns although the lease is still held: the job always progresses
        summary = gate.summary()
        assert summary["pauses"] == 1 and summary["pauses_cut_short"] == 1
    finally:
        holder.release()


def test_the_device_worker_holds_the_lease_for_each_prediction_and_releases_it_on_error(tmp_path):
    worker = DeviceWorker("cpu", lease=DeviceLease(tmp_path, "cpu"))
    probe = DeviceLease(tmp_path, "cpu")
    try:
        assert worker.submit(probe.busy).result(timeout=30) is True  # held while the work runs

        def fail() -> None:
            raise RuntimeError("prediction failed")

        with pytest.raises(RuntimeError):
            worker.submit(fail).result(timeout=30)
        wait_for(lambda: not probe.busy(), "the lease to be released", timeout=10)
    finally:
        worker.close()
    assert not probe.busy()


def test_job_limits_leave_a_prediction_some_cpu_cores():
    import torch

    from napari_uqseg.server.device_lease import job_threads

    assert job_threads(LeasePolicy(), cores=8, current=8) == 6
    assert job_threads(LeasePolicy(), cores=2, current=2) == 1
    assert job_threads(LeasePolicy(), cores=1, current=1) == 1
    assert job_threads(LeasePolicy(), cores=8, current=2) == 2  # OMP_NUM_THREADS still caps it
    assert job_threads(LeasePolicy(job_cpu_threads=3), cores=8, current=8) == 3
    threads = torch.get_num_threads()
    try:
        applied = apply_job_limits("cpu", LeasePolicy(job_cpu_threads=1))
        assert applied == {"threads": 1, "gpu_fraction": None} and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("bad", [{"job_gpu_fraction": 0.0}, {"job_gpu_fraction": 1.5}, {"job_max_pause_s": -1}])
def test_lease_policy_is_validated(bad):
    from napari_uqseg.core.errors import InputError

    with pytest.raises(InputError):
        LeasePolicy(**bad)
