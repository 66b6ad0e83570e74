"""Progress reporting shared by engine, server and clients."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(done, total, message)``; may raise ``CancelledError`` to stop the work.
Progress = Callable[[float, float, str], None]


def no_progress(done: float, total: float, message: str) -> None:
    """A progress callback that ignores everything."""
