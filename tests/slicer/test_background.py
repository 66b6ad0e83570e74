"""The worker thread: results, progress and errors arrive on the polling thread; cancel stops work."""

from __future__ import annotations

import threading
import time

import pytest
from UQSegLib.background import BackgroundWorker

from napari_uqseg.core.errors import CancelledError


def poll_until(worker: BackgroundWorker, done, timeout: float = 5.0) -> None:
    """What the module's QTimer does: poll on this (main) thread until ``done()``."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "worker did not deliver in time"
        worker.poll()
        time.sleep(0.005)


@pytest.fixture()
def worker():
    w = BackgroundWorker()
    yield w
    w.shutdown()


def test_results_and_progress_arrive_on_the_polling_thread(worker):
    seen = {}
    progress = []

    def work(report):
        seen["worker_thread"] = threading.current_thread()
        report(1, 2, "half")
        return 42

    def done(value):
        seen["value"], seen["callback_thread"] = value, threading.current_thread()

    worker.submit(work, done, on_progress=lambda *p: progress.append(p), label="predict")
    assert worker.busy
    poll_until(worker, lambda: "value" in seen)
    assert seen["value"] == 42
    assert seen["callback_thread"] is threading.main_thread()
    assert seen["worker_thread"] is not threading.main_thread()
    assert progress == [(1.0, 2.0, "half")]
    assert not worker.busy


def test_cancel_stops_at_the_next_progress_report(worker):
    started, errors, finished = threading.Event(), [], []

    def work(report):
        started.set()
        for i in range(500):
            report(i, 500, "step")
            time.sleep(0.01)
        finished.append(True)

    task = worker.submit(work, on_error=errors.append, label="predict")
    assert started.wait(5)
    task.cancel()
    poll_until(worker, lambda: errors)
    assert isinstance(errors[0], CancelledError) and not finished
    assert "predict cancelled" in str(errors[0])


def test_errors_are_delivered_and_the_worker_survives(worker):
    errors, results = [], []
    worker.submit(lambda report: 1 / 0, results.append, errors.append)
    worker.submit(lambda report: "after", results.append, errors.append)
    poll_until(worker, lambda: errors and results)
    assert isinstance(errors[0], ZeroDivisionError)
    assert results == ["after"]


def test_queued_task_cancelled_before_it_starts_never_runs(worker):
    gate, ran, errors = threading.Event(), [], []
    worker.submit(lambda report: gate.wait(5))
    queued = worker.submit(lambda report: ran.append(True), on_error=errors.append, label="poll")
    queued.cancel()
    gate.set()
    poll_until(worker, lambda: errors)
    assert not ran and isinstance(errors[0], CancelledError)


def test_shutdown_cancels_queued_work():
    worker = BackgroundWorker()
    started, gate, errors, ran = threading.Event(), threading.Event(), [], []

    def blocking(report):
        started.set()
        gate.wait(5)

    worker.submit(blocking)
    worker.submit(lambda report: ran.append(True), on_error=errors.append, label="job poll")
    assert started.wait(5)
    worker.shutdown(timeout=0.05)  # the running call is still blocked: the queued one must be dropped
    gate.set()
    worker._thread.join(5)
    worker.poll()
    assert not ran
    assert len(errors) == 1 and isinstance(errors[0], CancelledError)
    with pytest.raises(RuntimeError, match="shut down"):
        worker.submit(lambda report: None)
