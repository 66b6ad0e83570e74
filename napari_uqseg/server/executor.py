"""Job executors: the default local one (a subprocess per job) and an optional Ray one.

The ledger stays the source of truth under both: executors only claim QUEUED rows, start them and
record how they ended.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil

from napari_uqseg.core.errors import InputError
from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.server.device_lease import LeasePolicy

POLL_S = 0.2
RUNNER_MODULE = "napari_uqseg.server.job_runner"


def job_command(job_id: str, data_dir: Path, device: str, policy: LeasePolicy | None = None) -> list[str]:
    """The job process's command line (it contains the job id, which orphan detection relies on); with
    ``policy`` the job shares the device with predictions through the device lease."""
    lease = ["--share-device", *policy.job_args()] if policy is not None else []
    return [
        sys.executable,
        "-m",
        RUNNER_MODULE,
        job_id,
        "--data-dir",
        str(data_dir),
        "--device",
        device,
        *lease,
    ]


def kill_tree(pid: int, timeout: float = 5.0) -> None:
    """SIGKILL a process and all its descendants (the GPU memory of a CUDA child is freed on exit)."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=timeout)


def is_job_process(pid: int | None, job_id: str) -> bool:
    """Is ``pid`` alive and running ``job_id`` (guards against a reused pid)?"""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and job_id in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def job_processes(job_id: str, pid: int | None = None) -> list[int]:
    """Pids of live job processes of ``job_id``: ``pid`` if it runs the job, and any process whose command
    line is ``job_runner <job_id>`` (one started just before a crash, before any pid was recorded)."""
    found = {pid} if is_job_process(pid, job_id) else set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if RUNNER_MODULE in cmdline and job_id in cmdline and proc.info["pid"] != os.getpid():
            found.add(proc.info["pid"])
    return sorted(found)


def recover(store: DataDir) -> list[str]:
    """Start-up recovery: kill orphaned job processes of RUNNING rows, then re-queue those rows.

    Returns
    -------
    list of str
        Ids of the re-queued (or, with a pending cancel, cancelled) jobs.
    """
    ids = []
    for row in store.ledger.running_jobs():
        for pid in job_processes(row["id"], row["pid"]):
            kill_tree(pid)
        store.ledger.requeue(row["id"])
        ids.append(row["id"])
    return ids


def acquire_lock(path: Path) -> Any:
    """A non-blocking exclusive lock on ``path`` held while the returned file stays open (None if taken)."""
    handle = open(path, "a+b")  # noqa: SIM115  (kept open: closing it releases the lock)
    try:
        if os.name == "posix":
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        handle.close()
        return None
    return handle


class LocalExecutor:
    """Runs QUEUED jobs one at a time per device, each as ``python -m napari_uqseg.server.job_runner``.

    Parameters
    ----------
    store : DataDir
        Data folder and ledger.
    device : str
        Device given to the job processes (``"cpu"``, ``"cuda:0"``).
    policy : LeasePolicy or None
        How a job shares the device with the server's predictions (default ``LeasePolicy()``).
    """

    def __init__(self, store: DataDir, device: str, policy: LeasePolicy | None = None) -> None:
        self.store = store
        self.device = device
        self.policy = policy or LeasePolicy()
        self._proc: subprocess.Popen | None = None
        self._job: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="job-executor", daemon=True)

    def start(self) -> bool:
        """Recover and start claiming jobs, unless another process already runs this data folder's jobs.

        Returns ``False`` when the folder's executor lock is held elsewhere (e.g. a server and a
        ``LocalBackend`` on one folder): recovery there would kill that process's live jobs.
        """
        self._lock_file = acquire_lock(self.store.root / "executor.lock")
        if self._lock_file is None:
            return False
        recover(self.store)
        self._thread.start()
        return True

    def _launch(self, row: dict[str, Any]) -> None:
        job_dir = self.store.job_dir(row["id"])
        job_dir.mkdir(exist_ok=True)
        log = open(job_dir / "log.txt", "ab")  # noqa: SIM115  (closed when the process ends)
        kwargs: dict[str, Any] = {"stdout": log, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # own process group: a server crash does not signal it
        else:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(job_command(row["id"], self.store.root, self.device, self.policy), env=env, **kwargs)
        log.close()
        self.store.ledger.set_pid(row["id"], proc.pid)
        self._proc, self._job = proc, row["id"]

    def _finish(self, rc: int) -> None:
        jid = self._job
        row = self.store.ledger.job_row(jid)
        if row["cancel_requested"]:
            self.store.ledger.finish(jid, "cancelled", error="cancelled by request")
        elif rc == 0:
            self.store.ledger.finish(jid, "failed", error="job process exited without recording a result")
        else:
            self.store.ledger.finish(jid, "failed", error=f"job process exited with code {rc}\n{self._log_tail(jid)}")
        self._proc, self._job = None, None

    def _log_tail(self, jid: str, n: int = 3000) -> str:
        path = self.store.job_dir(jid) / "log.txt"
        return path.read_bytes()[-n:].decode(errors="replace") if path.is_file() else ""

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    if self._proc is not None:
                        rc = self._proc.poll()
                        if rc is not None:
                            self._finish(rc)
                        elif self.store.ledger.job_row(self._job)["cancel_requested"]:
                            kill_tree(self._proc.pid)
                    if self._proc is None:
                        row = self.store.ledger.claim_next()
                        if row is not None:
                            self._launch(row)
            except Exception as exc:  # noqa: BLE001  (keep the executor alive)
                print(f"job executor: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            self._stop.wait(POLL_S)

    def cancel(self, job_id: str) -> None:
        """Kill the job's process tree now if it is the running one (the ledger flag is already set)."""
        with self._lock:
            if self._job == job_id and self._proc is not None:
                kill_tree(self._proc.pid)
                self._finish(self._proc.wait(timeout=10))

    def stop(self, kill_running: bool = True) -> None:
        """Stop claiming jobs; a running job is killed and re-queued (it resumes at the next start)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            if self._proc is not None and kill_running:
                kill_tree(self._proc.pid)
                self.store.ledger.requeue(self._job)
                self._proc, self._job = None, None
        if getattr(self, "_lock_file", None) is not None:
            self._lock_file.close()
            self._lock_file = None


class RayExecutor:
    """Runs the same job function on a Ray cluster (``pip install napari-uqseg[ray]``).

    Each claimed job becomes ``ray.remote(num_gpus=...)(run_job).remote(job_id, data_dir)``; the data
    folder must be on a filesystem every Ray worker mounts. Cancel uses ``ray.cancel(force=True)``, which
    kills the worker process (and the actors a triage job started: they share its fate). A worker that
    dies mid-job (killed, node lost) is retried once (:data:`MAX_RETRIES`): train and fine-tune resume
    from the checkpoints in the job folder, triage skips the cases it finished; a second death fails the
    job with Ray's error. Enable Ray's token auth (``RAY_AUTH_MODE=token``) and keep the dashboard private.

    Parameters
    ----------
    store : DataDir
        Data folder and ledger (shared filesystem).
    num_gpus : float
        GPUs reserved per job (a triage job reserves none itself: its actors do).
    address : str or None
        Ray cluster address (``None``: ``ray.init()`` decides, e.g. from ``RAY_ADDRESS``).
    """

    MAX_RETRIES = 1

    def __init__(self, store: DataDir, num_gpus: float = 1.0, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise InputError("--executor", "ray is not installed; pip install 'napari-uqseg[ray]'") from exc
        self.ray = ray
        self.store = store
        self.num_gpus = num_gpus
        self.address = address
        self._refs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ray-executor", daemon=True)

    def start(self) -> bool:
        from napari_uqseg.server.job_runner import run_job

        self._lock_file = acquire_lock(self.store.root / "executor.lock")
        if self._lock_file is None:
            return False
        self.ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False)
        self._remote = self.ray.remote(max_retries=self.MAX_RETRIES, retry_exceptions=False)(run_job)
        recover(self.store)
        self._thread.start()
        return True

    def _submit(self, row: dict[str, Any]) -> None:
        triage = row["kind"] == "triage"  # a coordinator: its actors hold the CPUs and GPUs
        options = {"num_cpus": 0, "num_gpus": 0} if triage else {"num_gpus": self.num_gpus}
        device = "cuda" if self.num_gpus > 0 else "cpu"
        self._refs[row["id"]] = self._remote.options(**options).remote(row["id"], str(self.store.root), device)

    def _collect(self) -> None:
        for jid, ref in list(self._refs.items()):
            ready, _ = self.ray.wait([ref], timeout=0)
            if not ready:
                continue
            del self._refs[jid]
            try:
                self.ray.get(ref)
            except Exception as exc:  # noqa: BLE001  (a failed, crashed or cancelled Ray task)
                cancelled = self.store.ledger.job_row(jid)["cancel_requested"]
                self.store.ledger.finish(jid, "cancelled" if cancelled else "failed", error=str(exc))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    row = self.store.ledger.claim_next()
                    if row is not None:
                        self._submit(row)
                    self._collect()
            except Exception as exc:  # noqa: BLE001  (keep the executor alive)
                print(f"ray executor: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            self._stop.wait(POLL_S)

    def cancel(self, job_id: str) -> None:
        """Force-cancel the job's Ray task (its worker process is killed; the loop records the end)."""
        ref = self._refs.get(job_id)
        if ref is not None:
            self.ray.cancel(ref, force=True)

    def stop(self, kill_running: bool = True) -> None:
        """Stop claiming jobs; running ones are cancelled and re-queued (they resume at the next start)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            for jid in list(self._refs):
                if kill_running:
                    self.cancel(jid)
                    self.store.ledger.requeue(jid)
            self._refs.clear()
        if getattr(self, "_lock_file", None) is not None:
            self._lock_file.close()
            self._lock_file = None
