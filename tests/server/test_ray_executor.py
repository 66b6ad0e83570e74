"""The Ray job executor for real: a local Ray head and ``uqseg serve --executor ray`` (no mocks).

Train, fine-tune, evaluate and triage jobs run as Ray tasks (triage with a Ray actor holding the model);
cancel leaves no task or actor running; a worker killed mid-job is retried by Ray and the job still
succeeds (``RayExecutor.MAX_RETRIES``).
"""

from __future__ import annotations

import copy
import os
import signal

import numpy as np
import psutil
import pytest

from napari_uqseg.bench.tiny_models import TINY_CONFIG
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.client.worklist_source import RemoteWorklist
from napari_uqseg.core.sample_data import synthetic_case, write_synthetic_dataset
from napari_uqseg.testing.polling import wait_for
from napari_uqseg.testing.server import start_server

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'napari-uqseg[ray]' (the dev extra has it)")

JOB_TIMEOUT = 600  # s; jobs end as soon as they are done (a loaded CI machine starts Ray workers slowly)
RAY_TITLES = ("ray::run_job", "ray::CasePredictor")


@pytest.fixture(scope="module")
def ray_head():
    """A private one-node Ray cluster started by this test process (no dashboard), shut down after the module.

    Ray binds its node's own address even when asked for 127.0.0.1 (``services.resolve_ip_for_localhost``); the
    cluster is still this machine only, and Ray's token authentication (on by default since 2.5x) guards it.
    """
    context = ray.init(
        address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, namespace="uqseg-test"
    )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_server(ray_head, tiny_models, tmp_path_factory):
    """``uqseg serve --executor ray`` joined to the test cluster, with two datasets in its data folder."""
    data_dir = tmp_path_factory.mktemp("ray_server") / "data"
    datasets = data_dir / "datasets"
    datasets.mkdir(parents=True)
    write_synthetic_dataset(datasets / "synth", n_cases=6)
    write_synthetic_dataset(datasets / "study", n_cases=40, shape=(48, 48, 48))
    extra = ["--executor", "ray", "--ray-address", ray_head, "--num-gpus", "0"]
    handle = start_server(data_dir, tiny_models, extra_args=extra)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture()
def backend(ray_server):
    with RemoteBackend(ray_server.url, ray_server.token) as b:
        yield b


def ray_processes() -> list[psutil.Process]:
    """Ray worker processes now running a job task or a triage actor (titles ``ray::<task or actor>``)."""
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if cmd.startswith(RAY_TITLES):
            out.append(proc)
    return out


def succeeded(backend, job):
    status = backend.wait_job(job.id, timeout=JOB_TIMEOUT)
    assert status.state == "succeeded", (status.state, status.error)
    return status


def test_train_finetune_evaluate_and_triage_run_as_ray_jobs(backend):
    config = copy.deepcopy(TINY_CONFIG)
    train = succeeded(
        backend,
        backend.start_job("train", "ray_trained", {"method": "deterministic", "dataset": "synth", "config": config}),
    )
    assert train.result["version"] == "v1" and train.result["dataset"] == "synth"
    assert "ray_trained" in {m.name for m in backend.models()}

    image, label = synthetic_case(seed=11)
    prediction = backend.predict(image, "tiny_det")
    backend.submit_correction(prediction.id, label, prediction.review)
    tuned = succeeded(
        backend, backend.start_job("finetune", "tiny_det", {"options": {"iterations": 4, "checkpoint_every": 2}})
    )
    assert tuned.result["version"] == "v2" and tuned.result["finetuned_on"]
    evaluated = succeeded(backend, backend.start_job("evaluate", "tiny_det", {"version": "v2"}))
    assert evaluated.result["version"] == "v2" and "dice" in str(evaluated.result)

    triaged = succeeded(backend, backend.start_job("triage", "tiny_det", {"dataset": "synth", "version": "v1"}))
    assert triaged.result["executor"] == "ray" and triaged.result["predicted"] == 6 and not triaged.result["failed"]
    worklist = RemoteWorklist(backend, triaged.id)
    scores = [r.score for r in worklist.rows]
    assert len(scores) == 6 and scores == sorted(scores, reverse=True)
    case_image, result = worklist.open_case(worklist.rows[0].case)
    assert result.prediction.mask.shape == case_image.shape == (24, 24, 24)
    assert result.review.case_score == pytest.approx(worklist.rows[0].score)
    np.testing.assert_allclose(result.prediction.mask.affine, case_image.affine)


def cpus_all_free() -> bool:
    return ray.available_resources().get("CPU", 0.0) == ray.cluster_resources().get("CPU", -1.0)


@pytest.mark.parametrize(
    ("kind", "model", "params"),
    [
        (
            "train",
            "ray_cancelled",
            {
                "method": "deterministic",
                "dataset": "synth",
                "config": {**TINY_CONFIG, "train": {**TINY_CONFIG["train"], "iterations": 100000}},
            },
        ),
        ("triage", "tiny_det", {"dataset": "study", "workers": 1}),
    ],
)
def test_cancel_leaves_no_ray_task_or_actor_running(backend, kind, model, params):
    job = backend.start_job(kind, model, params)
    wait_for(lambda: backend.job(job.id).progress > 0, f"{kind} job to make progress", timeout=JOB_TIMEOUT)
    running = ray_processes()
    assert running, "no Ray worker process runs the job"
    status = backend.cancel_job(job.id)
    status = backend.wait_job(job.id, timeout=JOB_TIMEOUT)
    assert status.state == "cancelled", (status.state, status.error)
    wait_for(lambda: not ray_processes(), "the job's Ray worker processes to end", timeout=120)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in running)
    wait_for(cpus_all_free, "Ray to free the job's CPUs", timeout=120)


def test_a_worker_killed_mid_job_is_retried_and_the_job_succeeds(backend):
    config = copy.deepcopy(TINY_CONFIG)
    config["train"].update(iterations=40, checkpoint_every=2)
    job = backend.start_job("train", "ray_retried", {"method": "deterministic", "dataset": "synth", "config": config})
    wait_for(lambda: backend.job(job.id).progress > 0.1, "the train job to make progress", timeout=JOB_TIMEOUT)
    (victim,) = [p for p in ray_processes() if "run_job" in " ".join(p.cmdline())]
    os.kill(victim.pid, signal.SIGKILL)
    status = succeeded(backend, job)
    assert status.result["version"] == "v1"
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE


def test_a_triage_actor_killed_mid_job_is_restarted_and_no_case_is_lost(backend):
    job = backend.start_job("triage", "tiny_det", {"dataset": "study", "workers": 1})
    wait_for(lambda: backend.job(job.id).progress > 0, "the triage job to finish a case", timeout=JOB_TIMEOUT)
    (victim,) = [p for p in ray_processes() if "CasePredictor" in " ".join(p.cmdline())]
    os.kill(victim.pid, signal.SIGKILL)
    status = succeeded(backend, job)
    assert (status.result["predicted"], status.result["failed"]) == (40, {})
    assert len(RemoteWorklist(backend, job.id).rows) == 40
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE
