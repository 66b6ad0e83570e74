"""Server throughput against the number of concurrent clients (``uqseg bench --curves clients``).

One ``uqseg serve`` subprocess on a loopback port; ``n`` client threads, each with its own
``RemoteBackend``, send ``requests_per_client`` predictions of the same volume at once. Throughput is
predictions per second over the wall time of the batch; latency is each request's client-side time.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_uqseg.bench.loopback import ellipsoid_volume
from napari_uqseg.core.progress import Progress, no_progress

CURVE_CLIENTS = (1, 2, 4, 8, 16)


def _batch(url: str, token: str, volume, clients: int, per_client: int) -> dict[str, Any]:
    from napari_uqseg.client.remote import RemoteBackend

    latencies: list[float] = []
    wire: list[int] = []
    errors: list[str] = []
    start_gate = threading.Barrier(clients + 1)

    def client() -> None:
        with RemoteBackend(url, token, read_timeout=600) as backend:
            start_gate.wait()
            for _ in range(per_client):
                t = time.perf_counter()
                try:
                    result = backend.predict(volume, "bench")
                except Exception as exc:  # noqa: BLE001 - a refused request (503 at the queue bound) is a data point
                    errors.append(f"{exc.__class__.__name__}: {str(exc)[:120]}")
                    continue
                latencies.append(time.perf_counter() - t)
                wire.append(result.prediction.info["wire"]["received_bytes"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {
        "clients": clients,
        "requests": clients * per_client,
        "completed": len(latencies),
        "wall_s": wall,
        "throughput_per_s": len(latencies) / wall,
        "latency_median_s": statistics.median(latencies) if latencies else float("nan"),
        "latency_max_s": max(latencies, default=float("nan")),
        "received_bytes_median": statistics.median(wire) if wire else 0,
        "errors": errors[:3],
    }


def throughput_curve(
    model_dir: str | Path,
    clients: Sequence[int] = CURVE_CLIENTS,
    shape: Sequence[int] = (64, 64, 64),
    per_client: int = 2,
    device: str = "cpu",
    threads: int | None = None,
    progress: Progress = no_progress,
) -> list[dict[str, Any]]:
    """One point per client count against one server (model ``bench`` from ``model_dir``), after a warm-up."""
    from napari_uqseg.client.remote import RemoteBackend
    from napari_uqseg.server.launcher import start_server

    volume = ellipsoid_volume(tuple(shape))
    points = []
    with tempfile.TemporaryDirectory(prefix="uqseg-throughput-") as tmp:
        server = start_server(Path(tmp) / "server", {"bench": Path(model_dir)}, device=device, threads=threads)
        try:
            with RemoteBackend(server.url, server.token) as warm:
                warm.predict(volume, "bench")
            for i, n in enumerate(clients):
                progress(i, len(clients), f"{n} concurrent clients")
                points.append(_batch(server.url, server.token, volume, int(n), per_client))
        finally:
            server.stop()
    return points
