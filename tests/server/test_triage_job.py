"""The ``triage`` job on a real server (local executor): worklist and case files over HTTP, bad input refused."""

from __future__ import annotations

import time

import psutil
import pytest
import requests

from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.client.worklist_source import RemoteWorklist
from napari_uqseg.core.nifti_io import image_from_bytes, load_image
from napari_uqseg.core.sample_data import write_synthetic_dataset


@pytest.fixture(scope="module")
def triaged(uqseg_server):
    """A finished triage job over a 3-case dataset in the server's datasets folder."""
    write_synthetic_dataset(uqseg_server.data_dir / "datasets" / "synth", n_cases=3)
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        job = backend.start_job("triage", "tiny_mcd", {"dataset": "synth", "workers": 1})
        status = backend.wait_job(job.id, timeout=600)
    assert status.state == "succeeded", status.error
    return status


@pytest.fixture()
def http(uqseg_server):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {uqseg_server.token}"
    yield lambda method, path, **kw: session.request(method, uqseg_server.url + path, timeout=60, **kw)
    session.close()


def test_triage_job_result_and_worklist_over_http(uqseg_server, triaged):
    assert triaged.result["model"] == "tiny_mcd" and triaged.result["version"] == "v1"
    assert (triaged.result["cases"], triaged.result["predicted"], triaged.result["executor"]) == (3, 3, "local")
    assert triaged.progress == 1.0
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        worklist = RemoteWorklist(backend, triaged.id)
        scores = [r.score for r in worklist.rows]
        assert scores == sorted(scores, reverse=True) and len(scores) == 3
        row = worklist.rows[-1]
        served = image_from_bytes(worklist.file(row, "image"))
        original = load_image(row.image)
        assert (served.array == original.array).all()
        image, result = worklist.open_case(row.case)
        assert result.prediction.mask.shape == image.shape == original.shape
        assert set(result.prediction.maps) == set(row.maps) >= {"mutual_information"}
        assert result.review.case_score == pytest.approx(row.score)
        assert worklist.model == ("tiny_mcd", "v1")


BAD_JOBS = {
    "no dataset": ({"kind": "triage", "model": "tiny_det", "params": {}}, 400),
    "unknown dataset": ({"kind": "triage", "model": "tiny_det", "params": {"dataset": "nope"}}, 404),
    "path-like dataset": ({"kind": "triage", "model": "tiny_det", "params": {"dataset": "../jobs"}}, 400),
    "unknown version": ({"kind": "triage", "model": "tiny_det", "params": {"dataset": "synth", "version": "v9"}}, 404),
    "zero workers": ({"kind": "triage", "model": "tiny_det", "params": {"dataset": "synth", "workers": 0}}, 400),
    "negative gpus": ({"kind": "triage", "model": "tiny_det", "params": {"dataset": "synth", "num_gpus": -1}}, 400),
    "unknown param": ({"kind": "triage", "model": "tiny_det", "params": {"dataset": "synth", "colour": 1}}, 400),
}


@pytest.mark.parametrize("name", sorted(BAD_JOBS))
def test_bad_triage_jobs_are_refused(http, triaged, name):
    body, status = BAD_JOBS[name]
    r = http("POST", "/v1/jobs", json=body)
    assert r.status_code == status, (name, r.status_code, r.text)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/worklist/nobody/mask", 404),
        ("/worklist/{case}/nothing", 404),
        ("/worklist/..%2f..%2ftoken/mask", 4),  # 400 or 404: never the file
        ("/worklist/{case}/mask.nii", 400),
    ],
)
def test_bad_worklist_paths_are_refused(http, triaged, path, status):
    case = http("GET", f"/v1/jobs/{triaged.id}/worklist").json()["cases"][0]["case"]
    r = http("GET", f"/v1/jobs/{triaged.id}" + path.format(case=case))
    assert r.status_code == status or r.status_code // 100 == status, (path, r.status_code, r.text)


def test_worklist_of_a_job_that_is_not_a_triage_is_refused(http, uqseg_server, triaged):
    r = http("GET", "/v1/jobs/" + "0" * 32 + "/worklist")
    assert r.status_code == 404


def test_cancel_kills_the_triage_job_and_its_pool_workers(uqseg_server):
    write_synthetic_dataset(uqseg_server.data_dir / "datasets" / "study", n_cases=40, shape=(48, 48, 48))
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        job = backend.start_job("triage", "tiny_det", {"dataset": "study", "workers": 2})
        deadline = time.monotonic() + 600
        status = backend.job(job.id)
        while status.progress == 0 and not status.finished and time.monotonic() < deadline:
            time.sleep(0.2)
            status = backend.job(job.id)
        assert not status.finished and status.progress > 0, status
        (runner,) = [p for p in psutil.process_iter(["cmdline"]) if job.id in " ".join(p.info["cmdline"] or [])]
        workers = runner.children(recursive=True)
        assert len(workers) >= 2  # the pool's processes (and its resource tracker)
        backend.cancel_job(job.id)
        assert backend.wait_job(job.id, timeout=60).state == "cancelled"
    gone, alive = psutil.wait_procs([runner, *workers], timeout=30)
    assert not alive, alive
