"""Run network calls off Slicer's main thread; hand results back on it (pure Python, no Qt).

One persistent daemon thread runs submitted calls in order, so a prediction and a job poll never race on the same
HTTP session. The worker never touches MRML or Qt: it only puts events on a queue. The module's ``qt.QTimer``
calls :meth:`BackgroundWorker.poll` on the main thread, which runs the callbacks there.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from napari_uqseg.core.errors import CancelledError
from napari_uqseg.core.progress import Progress

#: callbacks a task reports to (all run on the thread that calls ``poll``)
DoneCallback = Callable[[Any], None]
ErrorCallback = Callable[[BaseException], None]
ProgressCallback = Callable[[float, float, str], None]


@dataclass
class Task:
    """A submitted call; ``cancel()`` makes its next progress report raise ``CancelledError``.

    A call blocked inside one HTTP request stops at its next progress report, not mid-request.
    """

    id: int
    label: str
    work: Callable[[Progress], Any]
    on_done: DoneCallback | None = None
    on_error: ErrorCallback | None = None
    on_progress: ProgressCallback | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        """Ask the task to stop (a queued task never starts)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        """True once its result or error is queued for ``poll`` (callbacks may not have run yet)."""
        return self._finished.is_set()


class BackgroundWorker:
    """A single worker thread plus a result queue drained by :meth:`poll` on the main thread.

    Parameters
    ----------
    name : str
        Thread name (shown in debuggers).
    """

    def __init__(self, name: str = "UQSeg-worker") -> None:
        self._tasks: queue.Queue[Task | None] = queue.Queue()
        self._events: queue.Queue[tuple[Task, str, Any]] = queue.Queue()
        self._ids = itertools.count(1)
        self._pending = 0  # submitted and not yet delivered by poll(); only touched on the main thread
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        work: Callable[[Progress], Any],
        on_done: DoneCallback | None = None,
        on_error: ErrorCallback | None = None,
        on_progress: ProgressCallback | None = None,
        label: str = "",
    ) -> Task:
        """Queue ``work(progress)``; its result goes to ``on_done``, an exception to ``on_error``.

        ``progress(done, total, message)`` reports to ``on_progress`` and raises ``CancelledError``
        once the task is cancelled; ``on_error`` then receives that ``CancelledError``.
        """
        if not self._thread.is_alive():
            raise RuntimeError("the background worker was shut down")
        task = Task(next(self._ids), label, work, on_done, on_error, on_progress)
        self._pending += 1
        self._tasks.put(task)
        return task

    @property
    def busy(self) -> bool:
        """Whether a submitted task has not been delivered by :meth:`poll` yet."""
        return self._pending > 0

    def poll(self) -> int:
        """Run the callbacks of everything that happened since the last call; returns the number of events.

        Call this on the main thread (from a ``qt.QTimer`` every 100-200 ms).
        """
        handled = 0
        while True:
            try:
                task, kind, value = self._events.get_nowait()
            except queue.Empty:
                return handled
            handled += 1
            if kind == "progress":
                if task.on_progress is not None and not task.cancelled:
                    task.on_progress(*value)
                continue
            self._pending -= 1
            if kind == "done" and task.on_done is not None:
                task.on_done(value)
            elif kind == "error" and task.on_error is not None:
                task.on_error(value)

    def shutdown(self, timeout: float | None = 5.0) -> None:
        """Cancel queued work and stop the thread (waits up to ``timeout`` s for the running call)."""
        while True:
            try:
                pending = self._tasks.get_nowait()
            except queue.Empty:
                break
            if pending is not None:
                pending.cancel()
                self._events.put((pending, "error", CancelledError(f"{pending.label or 'task'} cancelled")))
        self._tasks.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                if task.cancelled:
                    raise CancelledError(f"{task.label or 'task'} cancelled")
                result = task.work(self._progress_for(task))
                if task.cancelled:  # the call finished but the user no longer wants it
                    raise CancelledError(f"{task.label or 'task'} cancelled")
                event: tuple[Task, str, Any] = (task, "done", result)
            except Exception as exc:  # noqa: BLE001 - every failure must reach the main thread, never kill the worker
                event = (task, "error", exc)
            task._finished.set()
            self._events.put(event)

    def _progress_for(self, task: Task) -> Progress:
        def progress(done: float, total: float, message: str) -> None:
            if task.cancelled:
                raise CancelledError(f"{task.label or 'task'} cancelled")
            self._events.put((task, "progress", (float(done), float(total), str(message))))

        return progress
