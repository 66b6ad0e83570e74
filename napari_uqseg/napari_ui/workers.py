"""Background work for the widgets: client calls in napari workers, progress back on the GUI thread, plain-word errors.

Blocking calls take a ``progress(done, total, message)`` callback (``core.progress``); :func:`run_task` passes one
that forwards to the GUI thread through a Qt signal and raises ``CancelledError`` once ``Cancel`` asked the worker
to quit, so the engine or client stops at its next progress report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from qtpy.QtCore import QObject, Signal

from napari_uqseg.core.errors import CancelledError
from napari_uqseg.core.progress import Progress

logger = logging.getLogger(__name__)


class ProgressRelay(QObject):
    """Carries ``(done, total, message)`` from a worker thread to slots on the GUI thread (queued connection)."""

    progressed = Signal(float, float, str)


def run_task(
    fn: Callable[[Progress], Any],
    *,
    on_progress: Callable[[float, float, str], None] | None = None,
    on_returned: Callable[[Any], None] | None = None,
    on_errored: Callable[[BaseException], None] | None = None,
    on_finished: Callable[[], None] | None = None,
) -> Any:
    """Run ``fn(progress)`` in a napari ``FunctionWorker`` and return the started worker.

    ``worker.quit()`` cancels: the next progress report raises :class:`CancelledError`, which arrives through
    ``on_errored`` like any other failure (all callbacks run on the GUI thread).
    """
    from napari.qt.threading import create_worker

    relay = ProgressRelay()
    holder: dict[str, Any] = {}

    def progress(done: float, total: float, message: str) -> None:
        if holder["worker"].abort_requested:
            raise CancelledError("cancelled by the user")
        relay.progressed.emit(float(done), float(total), str(message))

    worker = create_worker(fn, progress, _start_thread=False, _ignore_errors=True)
    holder["worker"] = worker
    worker.relay = relay  # keep the relay alive as long as the worker
    if on_progress is not None:
        relay.progressed.connect(on_progress)
    _connect(worker, on_returned, on_errored, on_finished)
    worker.start()
    return worker


def run_generator(
    gen_fn: Callable[[], Generator[Any, None, Any]],
    *,
    on_yielded: Callable[[Any], None] | None = None,
    on_returned: Callable[[Any], None] | None = None,
    on_errored: Callable[[BaseException], None] | None = None,
    on_finished: Callable[[], None] | None = None,
) -> Any:
    """Run a generator in a napari ``GeneratorWorker`` (each ``yield`` reaches ``on_yielded``); returns the worker."""
    from napari.qt.threading import create_worker

    worker = create_worker(gen_fn, _start_thread=False, _ignore_errors=True)
    if on_yielded is not None:
        worker.yielded.connect(on_yielded)
    _connect(worker, on_returned, on_errored, on_finished)
    worker.start()
    return worker


def _connect(worker: Any, on_returned: Any, on_errored: Any, on_finished: Any) -> None:
    if on_returned is not None:
        worker.returned.connect(on_returned)
    if on_errored is not None:
        worker.errored.connect(on_errored)
    if on_finished is not None:
        worker.finished.connect(on_finished)
