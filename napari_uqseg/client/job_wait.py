"""Waiting for a background job: the one helper behind ``Backend.wait_job``, the napari panels and Slicer's timer.

Each status request may be a long poll: ``Backend.job(id, wait=S)`` lets a server hold the answer until the
job is finished or ``S`` seconds passed (``GET /v1/jobs/{id}?wait=S``), so a finished job is seen at once.
A backend that answers sooner with an unfinished job (``LocalBackend``, which reads its own ledger, or a
server without the long poll) is polled: the helper sleeps the rest of the interval before asking again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.records import JobStatus

if TYPE_CHECKING:
    from napari_uqseg.client.backend import Backend

#: seconds between status reports while a job runs (each one a long poll where the backend has it)
DEFAULT_INTERVAL_S = 1.0
#: longest single sleep, so that ``should_stop`` is noticed quickly
SLEEP_STEP_S = 0.05


def never() -> bool:
    return False


def sleep_unless(should_stop: Callable[[], bool], seconds: float) -> None:
    """Sleep ``seconds`` in short steps, returning early once ``should_stop()`` is true (keeps Cancel snappy)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not should_stop():
        time.sleep(min(SLEEP_STEP_S, max(end - time.monotonic(), 0.0)))


class JobWatch:
    """Follows one job until it is finished.

    Parameters
    ----------
    backend : Backend
        Where the job runs.
    job_id : str
        The job.
    status : JobStatus or None
        Its last known status (``start_job``'s answer), if any.

    ``step()`` asks once and answers at once: the form a GUI timer calls (Slicer). ``follow()`` yields
    each status until the job is finished; ``wait()`` blocks until then (``Backend.wait_job``).
    """

    def __init__(self, backend: Backend, job_id: str, status: JobStatus | None = None) -> None:
        self.backend, self.job_id, self.status = backend, job_id, status

    @property
    def finished(self) -> bool:
        return self.status is not None and self.status.finished

    def step(self, wait: float = 0.0) -> JobStatus:
        """One status request; ``wait`` seconds of long poll at most (0: answer at once, never sleeps)."""
        self.status = self.backend.job(self.job_id, wait=wait)
        return self.status

    def follow(
        self,
        interval: float = DEFAULT_INTERVAL_S,
        timeout: float | None = None,
        should_stop: Callable[[], bool] = never,
    ) -> Iterator[JobStatus]:
        """Yield a status every ``interval`` seconds or sooner, the last one finished.

        Ends early, without a finished status, once ``timeout`` seconds passed or ``should_stop()`` is true.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished and not should_stop():
            left = interval if deadline is None else min(interval, deadline - time.monotonic())
            if left <= 0:
                return
            asked = time.monotonic()
            yield self.step(wait=left)
            if not self.finished:  # answered before the interval ended: poll after the rest of it
                sleep_unless(should_stop, asked + left - time.monotonic())

    def wait(self, timeout: float, interval: float = DEFAULT_INTERVAL_S, progress: Progress = no_progress) -> JobStatus:
        """Block until the job is finished or ``timeout`` seconds passed; returns the last status.

        ``progress(fraction, 1.0, message)`` is called for each unfinished status. Check ``.finished``: a
        timeout returns an unfinished status.
        """
        for status in self.follow(interval, timeout):
            if not status.finished:
                progress(status.progress, 1.0, status.message)
        return self.status if self.status is not None else self.step()
