"""One device shared by predictions and jobs: predictions hold a lease, a job pauses between its steps.

A clinician waits for a prediction; a fine-tune can wait. The server's device worker holds the device's
lease (an exclusive ``flock`` on ``<data>/device-lease/<device>.lock``) while it has predictions to run. A
job process checks the lease at every step boundary (each progress report) and pauses while it is held, for
at most ``job_max_pause_s`` at a time so that the job always progresses. The kernel drops a ``flock`` when
its holder dies, so a killed prediction or server never leaves the device reserved. Memory: a job process
caps its share of a CUDA device (``job_gpu_fraction``) and of the CPU cores (``job_cpu_threads``), so a
prediction finds room while the job pauses or finishes its step. The reasons are in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from napari_uqseg.core.errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no flock; predictions and jobs then share the device without a lease
    fcntl = None

LEASE_FOLDER = "device-lease"
POLL_S = 0.05  # how often a paused job looks at the lease
STATUS_EVERY_S = 1.0  # how often a running job refreshes its status file between pauses

POLICY_HELP = {
    "job_max_pause_s": "longest one pause of a job while predictions hold the device; then it takes a step (0: never)",
    "job_gpu_fraction": "share of a CUDA device's memory a job may allocate; the rest stays free for predictions",
    "job_cpu_threads": "torch threads of a job on CPU (0: the cores less a quarter, leaving predictions at least one)",
}


@dataclass
class LeasePolicy:
    """How a job shares its device with predictions (``uqseg serve`` options of the same names).

    Attributes
    ----------
    job_max_pause_s : float
        Longest a job waits, in one pause, for predictions to free the device (seconds); then it takes
        one step anyway. 0 turns pausing off.
    job_gpu_fraction : float
        Share of a CUDA device's memory a job process may allocate, in (0, 1].
    job_cpu_threads : int
        torch threads of a job on CPU; 0: ``cores - max(1, cores // 4)`` (at least 1).
    """

    job_max_pause_s: float = 30.0
    job_gpu_fraction: float = 0.5
    job_cpu_threads: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.job_max_pause_s <= 86400:
            raise InputError("--job-max-pause-s", f"must be in [0, 86400] seconds, got {self.job_max_pause_s}")
        if not 0 < self.job_gpu_fraction <= 1:
            raise InputError("--job-gpu-fraction", f"must be in (0, 1], got {self.job_gpu_fraction}")
        if self.job_cpu_threads < 0:
            raise InputError("--job-cpu-threads", f"must be >= 0, got {self.job_cpu_threads}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def job_args(self) -> list[str]:
        """The policy as job-runner command-line options (see :func:`add_policy_arguments`)."""
        return [arg for name, value in asdict(self).items() for arg in (_flag(name), str(value))]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--job-max-pause-s``, ``--job-gpu-fraction`` and ``--job-cpu-threads`` with the defaults above."""
    defaults = LeasePolicy()
    for name, value in asdict(defaults).items():
        text = POLICY_HELP[name]
        parser.add_argument(_flag(name), type=type(value), default=value, help=f"{text} (default %(default)s)")


def policy_from_args(args: argparse.Namespace) -> LeasePolicy:
    return LeasePolicy(**{name: getattr(args, name) for name in asdict(LeasePolicy())})


def device_key(device: str) -> str:
    """File-name key of a torch device string: ``"cpu"``, ``"cuda"``/``"cuda:0"`` -> ``"cuda-0"``."""
    name = str(device)
    return ("cuda:0" if name == "cuda" else name).replace(":", "-")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` (mode 0600; a status record: no fsync)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _read_live(path: Path) -> dict[str, Any] | None:
    """The JSON record at ``path`` if the process that wrote it (``pid``) is alive, else ``None``."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = record.get("pid")
    return record if isinstance(pid, int) and psutil.pid_exists(pid) else None


class DeviceLease:
    """The lease of one device, shared by every process using one data folder.

    Parameters
    ----------
    root : Path
        The server's data folder (the lease files live in ``root/device-lease``).
    device : str
        Torch device string (``"cpu"``, ``"cuda:0"``).
    """

    def __init__(self, root: str | Path, device: str) -> None:
        self.folder = Path(root) / LEASE_FOLDER
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = device_key(device)
        self.device = str(device)
        self.lock_path = self.folder / f"{key}.lock"
        self.holder_path = self.folder / f"{key}.holder.json"
        self.job_path = self.folder / f"{key}.job.json"
        self._handle: Any = None
        self._mutex = threading.Lock()

    def _open(self) -> Any:
        """The lock file, opened for locking (created 0600 whatever the umask)."""
        return os.fdopen(os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")

    @property
    def held(self) -> bool:
        """Does this object hold the lease now?"""
        return self._handle is not None

    def acquire(self, role: str = "prediction") -> None:
        """Take the lease, waiting while another holder has it (a no-op when this object holds it)."""
        with self._mutex:
            if self._handle is not None or fcntl is None:
                return
            handle = self._open()  # kept open: closing it releases the lease
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            self._handle = handle
            _write_json(self.holder_path, {"pid": os.getpid(), "role": role, "since": time.time()})

    def release(self) -> None:
        """Give the lease back (a no-op when not held)."""
        with self._mutex:
            if self._handle is None:
                return
            self.holder_path.unlink(missing_ok=True)  # before unlocking: never deletes the next holder's record
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def busy(self) -> bool:
        """Is the lease held now (by anyone, this object included)?"""
        if fcntl is None:
            return False
        with self._open() as probe:
            try:
                fcntl.flock(probe.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(probe.fileno(), fcntl.LOCK_UN)
        return False

    def holder(self) -> dict[str, Any] | None:
        """``{"pid", "role", "since"}`` of the holder, ``None`` when free (a dead holder's record is ignored)."""
        if not self.busy():
            return None
        return _read_live(self.holder_path) or {"pid": None, "role": "unknown", "since": None}

    def job(self) -> dict[str, Any] | None:
        """The running job's record (see :class:`JobGate`), ``None`` when no live job uses the device."""
        return _read_live(self.job_path)


def lease_report(lease: DeviceLease | None, predictions_waiting: int) -> dict[str, Any]:
    """The lease as ``/v1/health`` reports it: ``holder``, ``predictions_waiting`` and ``job``."""
    if lease is None:
        return {"holder": None, "predictions_waiting": predictions_waiting, "job": None}
    return {"holder": lease.holder(), "predictions_waiting": predictions_waiting, "job": lease.job()}


class JobGate:
    """A job's side of the lease: at each step boundary, pause while predictions hold the device.

    Parameters
    ----------
    lease : DeviceLease
        The job device's lease.
    policy : LeasePolicy
        ``job_max_pause_s`` bounds one pause.
    job_id : str
        Recorded in the status file ``/v1/health`` shows.
    say : callable or None
        ``say(message)`` when a pause starts and ends (the job's progress message).
    record : dict or None
        Updated with ``{"device_lease": summary}`` after every pause (kept with the job's result).
    """

    def __init__(
        self,
        lease: DeviceLease,
        policy: LeasePolicy,
        job_id: str,
        say: Callable[[str], None] | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        self.lease, self.policy, self.job_id = lease, policy, job_id
        self.say = say or (lambda message: None)
        self.record = record if record is not None else {}
        self.steps = self.pauses = self.cut_short = 0
        self.paused_s = 0.0
        self.paused = False
        self._written = 0.0
        self.record["device_lease"] = self.summary()

    def summary(self) -> dict[str, Any]:
        """``steps`` seen, ``pauses``, ``paused_s`` in total and ``pauses_cut_short`` by ``job_max_pause_s``."""
        return {
            "steps": self.steps,
            "pauses": self.pauses,
            "paused_s": round(self.paused_s, 3),
            "pauses_cut_short": self.cut_short,
        }

    def between_steps(self) -> None:
        """Called at each step boundary: returns at once, or after a pause of at most ``job_max_pause_s``."""
        self.steps += 1
        if self.policy.job_max_pause_s > 0 and self.lease.busy():
            self._pause()
        elif time.monotonic() - self._written >= STATUS_EVERY_S:
            self._write()
        self.record["device_lease"] = self.summary()

    def _pause(self) -> None:
        start = time.monotonic()
        self.pauses += 1
        self.say("paused: a prediction has the device")
        self.paused = True
        self._write()
        free_cached_memory(self.lease.device)
        while self.lease.busy():
            if time.monotonic() - start >= self.policy.job_max_pause_s:
                self.cut_short += 1  # the job takes a step although predictions still hold the device
                break
            time.sleep(POLL_S)
        self.paused = False
        self.paused_s += time.monotonic() - start
        self.say("resumed")
        self._write()

    def _write(self) -> None:
        self._written = time.monotonic()
        status = {"job": self.job_id, "pid": os.getpid(), "paused": self.paused, **self.summary()}
        _write_json(self.lease.job_path, status)

    def close(self) -> None:
        """The job ended: remove its status record."""
        self.lease.job_path.unlink(missing_ok=True)


def free_cached_memory(device: str) -> None:
    """Hand a paused CUDA job's cached, unused blocks back to the device (nothing on CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def job_threads(policy: LeasePolicy, cores: int | None = None, current: int | None = None) -> int:
    """torch threads of a job on CPU under ``policy``: ``job_cpu_threads``, or else the cores less a quarter
    (at least one left for predictions), never more than ``current`` (torch's count: ``OMP_NUM_THREADS``)."""
    if policy.job_cpu_threads:
        return policy.job_cpu_threads
    import torch

    cores = cores or os.cpu_count() or 1
    current = current or torch.get_num_threads()
    return max(1, min(current, cores - max(1, cores // 4)))


def apply_job_limits(device: str, policy: LeasePolicy) -> dict[str, Any]:
    """Cap this (job) process's CPU threads and, on CUDA, its share of device memory.

    Returns
    -------
    dict
        ``threads`` set and ``gpu_fraction`` (``None`` on CPU).
    """
    import torch

    threads = job_threads(policy)
    torch.set_num_threads(threads)
    fraction = None
    if device.startswith("cuda") and torch.cuda.is_available():
        fraction = policy.job_gpu_fraction
        torch.cuda.set_per_process_memory_fraction(fraction, torch.device(device))
    return {"threads": threads, "gpu_fraction": fraction}
