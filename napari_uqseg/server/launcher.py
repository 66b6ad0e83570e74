"""Start ``uqseg serve`` as a subprocess on a free loopback port and wait until it is healthy.

Used by the test fixtures (``napari_uqseg.testing.server``) and the loopback benchmark.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

SERVE = "import sys; from napari_uqseg.cli import main; sys.exit(main(sys.argv[1:]))"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerHandle:
    """A running server subprocess.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>``.
    token : str
        Bearer token the server requires.
    data_dir : Path
        Its data folder (ledger, images, models ...).
    models : dict
        Model name -> imported source folder.
    threads : int or None
        ``OMP_NUM_THREADS`` of the server (``None``: the caller's, else 1, so test servers stay small).
    """

    url: str
    token: str
    data_dir: Path
    port: int
    models: dict[str, Path] = field(default_factory=dict)
    device: str = "cpu"
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    threads: int | None = None

    def command(self) -> list[str]:
        imports = [arg for name, path in self.models.items() for arg in ("--import-model", f"{name}={path}")]
        return [
            sys.executable,
            "-c",
            SERVE,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--device",
            self.device,
            *imports,
            *self.extra_args,
        ]

    def start(self, timeout: float = 120.0) -> ServerHandle:
        """Start (or restart, on the same port and data folder) and wait until ``/v1/health`` answers."""
        threads = str(self.threads) if self.threads else os.environ.get("OMP_NUM_THREADS", "1")
        env = {**os.environ, "UQSEG_TOKEN": self.token, "OMP_NUM_THREADS": threads}
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child owns the descriptor after Popen)
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        wait_healthy(self.url, timeout, self.process, self.log_path)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful shutdown), SIGKILL if it does not exit in ``timeout`` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill9(self) -> None:
        """``kill -9`` the server (no cleanup: job subprocesses are left orphaned, as after a crash)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.is_file() else ""


def wait_healthy(url: str, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None) -> dict:
    """Poll ``url/v1/health`` until it answers 200; RuntimeError with the server log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            text = log.read_text(errors="replace") if log and log.is_file() else ""
            raise RuntimeError(f"uqseg serve exited with code {process.returncode}:\n{text[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"uqseg serve at {url} not healthy after {timeout:.0f} s")


def start_server(
    data_dir: str | Path,
    models: dict[str, Path] | None = None,
    token: str | None = None,
    device: str = "cpu",
    extra_args: list[str] | None = None,
    threads: int | None = None,
) -> ServerHandle:
    """Start ``uqseg serve`` on a free port with ``data_dir``, importing ``models``; returns the handle.

    ``extra_args`` are appended to the command line (e.g. ``["--max-upload-mb", "1"]``); ``threads``
    sets the server's ``OMP_NUM_THREADS`` (see ``ServerHandle``).
    """
    port = free_port()
    handle = ServerHandle(
        url=f"http://127.0.0.1:{port}",
        token=token or secrets.token_urlsafe(24),
        data_dir=Path(data_dir),
        port=port,
        models=dict(models or {}),
        device=device,
        extra_args=list(extra_args or []),
        threads=threads,
    )
    return handle.start()
