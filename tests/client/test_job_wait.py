"""Waiting for a job against a real server: the long poll (``?wait=``), the event stream, and ``JobWatch``."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from napari_uqseg.client.errors import NotFoundError
from napari_uqseg.client.job_wait import JobWatch
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.sample_data import synthetic_case

NEVER_ENDING = {"options": {"iterations": 1_000_000}}  # runs until cancelled


@pytest.fixture(scope="module")
def backend(uqseg_server):
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as client:
        image, label = synthetic_case((24, 24, 24), seed=91)
        result = client.predict(image, "tiny_det")
        client.submit_correction(result.id, label, result.review)
        yield client


def wait_until(condition, limit_s: float = 60.0) -> bool:
    """Poll ``condition`` until true or ``limit_s`` passed (a bound on the test's run, not an assertion)."""
    end = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def test_long_poll_answers_once_the_job_finishes(backend):
    job = backend.start_job("finetune", "tiny_det", NEVER_ENDING)
    assert not job.finished
    answers = []
    poll = threading.Thread(target=lambda: answers.append(backend.job(job.id, wait=30)))
    poll.start()
    # the long poll is held by the server (health does not count itself among the requests in flight)
    held = wait_until(lambda: answers or backend.health()["requests_in_flight"] >= 1)
    assert held and not answers, "the server answered the long poll before the job finished"
    backend.cancel_job(job.id)
    poll.join(60)
    (status,) = answers
    assert status.finished and status.state == "cancelled"


def test_event_stream_sends_each_change_until_finished(backend, uqseg_server):
    job = backend.start_job("finetune", "tiny_det", NEVER_ENDING)
    url = f"{uqseg_server.url}/v1/jobs/{job.id}/events"
    headers = {"Authorization": f"Bearer {uqseg_server.token}"}
    with requests.get(url, headers=headers, stream=True, timeout=(10, 120)) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        events = []
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
                break
        assert events[0]["state"] not in ("succeeded", "failed", "cancelled")
        backend.cancel_job(job.id)
        events += [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert events[-1]["state"] == "cancelled"  # the stream ended after the finished status
    assert all(e["id"] == job.id for e in events)
    assert len({json.dumps(e, sort_keys=True) for e in events}) == len(events)  # a change per event


def test_event_stream_of_an_unknown_job_is_404(uqseg_server):
    url = f"{uqseg_server.url}/v1/jobs/{'e' * 32}/events"
    r = requests.get(url, headers={"Authorization": f"Bearer {uqseg_server.token}"}, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_job_watch_follows_a_job_to_its_end(backend):
    job = backend.start_job("finetune", "tiny_det", {"options": {"iterations": 2, "checkpoint_every": 1}})
    watch = JobWatch(backend, job.id, job)
    seen = list(watch.follow(interval=5.0, timeout=600))
    assert seen and seen[-1].finished and seen[-1].state == "succeeded", seen[-1].error
    assert not any(s.finished for s in seen[:-1])
    assert watch.step().state == "succeeded"  # one request, answered at once
    assert backend.wait_job(job.id, timeout=1).state == "succeeded"


def test_job_watch_stops_when_asked(backend):
    job = backend.start_job("finetune", "tiny_det", NEVER_ENDING)
    watch = JobWatch(backend, job.id, job)
    assert list(watch.follow(should_stop=lambda: True)) == []
    assert not watch.wait(timeout=0).finished  # a timeout returns the unfinished status
    backend.cancel_job(job.id)
    assert watch.wait(timeout=120).state == "cancelled"


def test_job_watch_of_an_unknown_job_raises(backend):
    with pytest.raises(NotFoundError):
        JobWatch(backend, "e" * 32).step()
