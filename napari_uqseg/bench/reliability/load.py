"""N concurrent clients uploading and predicting against a real server for a bounded time.

Each client loops: upload its own image, predict it, fetch the mask. A 503 with ``Retry-After`` is the
server's sanctioned answer at its bounds (the client waits a little and goes on); anything else that is
not 2xx is a failure. A separate thread asks ``/v1/health`` throughout and records its latency.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests

from napari_uqseg.bench.peak_rss import PeakRSS
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.server.launcher import ServerHandle

HEALTH_EVERY_S = 0.2
REQUEST_TIMEOUT = (5.0, 120.0)


@dataclass
class LoadFigures:
    """Outcome of one load run (latencies in seconds)."""

    clients: int = 0
    seconds: float = 0.0
    served: int = 0
    busy_503_with_retry_after: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    health_latencies: list[float] = field(default_factory=list)
    health_failures: int = 0
    peak_rss_growth_mib: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float | None:
            return round(float(np.percentile(values, q)), 3) if values else None

        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "served": self.served,
            "busy_503_with_retry_after": self.busy_503_with_retry_after,
            "failures": self.failures,
            "latency_p50_s": pct(self.latencies, 50),
            "latency_p99_s": pct(self.latencies, 99),
            "health_checks": len(self.health_latencies),
            "health_max_s": round(max(self.health_latencies), 3) if self.health_latencies else None,
            "health_failures": self.health_failures,
            "peak_rss_growth_mib": self.peak_rss_growth_mib,
            "problems": self.problems[:20],
        }


class _Recorder:
    def __init__(self, figures: LoadFigures) -> None:
        self.figures, self.lock = figures, threading.Lock()

    def record(self, response: requests.Response | None, seconds: float, what: str) -> bool:
        """Count one answer; True when it was a success."""
        with self.lock:
            if response is not None and response.status_code < 400:
                self.figures.served += 1
                self.figures.latencies.append(seconds)
                return True
            if response is not None and response.status_code == 503 and response.headers.get("Retry-After"):
                self.figures.busy_503_with_retry_after += 1
                return False
            self.figures.failures += 1
            detail = "no answer" if response is None else f"{response.status_code} {response.text[:160]}"
            self.figures.problems.append(f"{what}: {detail}")
            return False


def _timed(session: requests.Session, method: str, url: str, **kw: Any) -> tuple[requests.Response | None, float]:
    start = time.perf_counter()
    try:
        response = session.request(method, url, timeout=REQUEST_TIMEOUT, **kw)
    except requests.exceptions.RequestException:
        response = None
    return response, time.perf_counter() - start


def _client(server: ServerHandle, index: int, stop: threading.Event, recorder: _Recorder) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    rng = np.random.default_rng(index)
    round_ = 0
    while not stop.is_set():
        image, _ = synthetic_case((16, 16, 16), seed=1000 * index + round_)
        data = nifti_bytes(image, dtype=np.float32)
        sha = hashlib.sha256(data).hexdigest()
        steps = [("PUT", f"/v1/images/{sha}", {"data": data}), ("POST", "/v1/predictions", None)]
        pid = None
        for method, path, kw in steps:
            if kw is None:
                kw = {"json": {"image": sha, "model": "tiny_det"}}
            response, seconds = _timed(session, method, server.url + path, **kw)
            if not recorder.record(response, seconds, f"client {index} {method} {path[:24]}"):
                break
            pid = response.json().get("id", pid)
        if pid is not None:
            response, seconds = _timed(session, "GET", f"{server.url}/v1/predictions/{pid}/outputs/mask")
            recorder.record(response, seconds, f"client {index} GET mask")
        round_ += 1
        stop.wait(float(rng.uniform(0.0, 0.3)))  # think time; also the back-off after a 503
    session.close()


def _health(server: ServerHandle, stop: threading.Event, figures: LoadFigures) -> None:
    session = requests.Session()
    while not stop.is_set():
        response, seconds = _timed(session, "GET", f"{server.url}/v1/health")
        figures.health_latencies.append(seconds)
        if response is None or response.status_code != 200:
            figures.health_failures += 1
        stop.wait(HEALTH_EVERY_S)
    session.close()


def run_load(server: ServerHandle, clients: int = 32, seconds: float = 30.0) -> LoadFigures:
    """Hold ``clients`` concurrent clients for ``seconds`` (then let in-flight requests finish)."""
    figures = LoadFigures(clients=clients)
    recorder, stop = _Recorder(figures), threading.Event()
    threads = [threading.Thread(target=_client, args=(server, i, stop, recorder)) for i in range(clients)]
    threads.append(threading.Thread(target=_health, args=(server, stop, figures)))
    start = time.perf_counter()
    with PeakRSS(server.process.pid) as rss:
        for thread in threads:
            thread.start()
        stop.wait(seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT[1] + 10)
    figures.seconds = time.perf_counter() - start
    figures.peak_rss_growth_mib = round(rss.growth_mib, 1)
    return figures
