"""Peak resident memory of another process (a server under test) while a block of code runs."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from types import TracebackType

import psutil

MiB = 1024 * 1024


def _peak_from_proc(pid: int) -> int | None:
    """``VmHWM`` (peak RSS since the last reset) in bytes, Linux only."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark of ``pid`` (Linux >= 4.0; our own child only)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    return False


class PeakRSS:
    """Context manager measuring how far a process's resident memory rose above its level at entry.

    Samples ``psutil`` RSS every ``interval`` seconds in a thread and, on Linux, also reads the kernel's
    exact peak (``VmHWM``, reset at entry), so a short spike between samples is not missed.

    Attributes
    ----------
    baseline, peak : int
        RSS in bytes at entry and the highest seen until exit.
    """

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._exact = False

    @property
    def growth_mib(self) -> float:
        """Peak minus baseline, MiB."""
        return (self.peak - self.baseline) / MiB

    def _rss(self) -> int:
        try:
            return int(self.process.memory_info().rss)
        except psutil.NoSuchProcess:
            return 0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRSS:
        self._exact = _reset_peak(self.process.pid)
        self.baseline = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        exact = _peak_from_proc(self.process.pid) if self._exact else None
        if exact is not None:
            self.peak = max(self.peak, exact)
