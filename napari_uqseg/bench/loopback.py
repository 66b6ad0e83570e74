"""Remote-over-loopback versus in-process prediction time for one volume size (``uqseg bench`` calls this).

It lives in the client layer because it drives both backends; the server is started as a subprocess.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.core.volume import Volume


def ellipsoid_volume(shape: tuple[int, ...], seed: int = 0) -> Volume:
    """A noisy float32 test volume of ``shape`` with a bright ellipsoid (1 mm voxels)."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in shape], indexing="ij")
    inside = sum(g**2 for g in grid) < 0.4
    array = (inside * 100.0 + rng.normal(300, 30, shape)).astype(np.float32)
    return Volume(array, np.eye(4))


def loopback_bench(
    model_dir: str | Path,
    shape: tuple[int, ...] = (128, 128, 128),
    repeats: int = 3,
    device: str = "cpu",
    work_dir: str | Path | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Median predict time through ``RemoteBackend`` on 127.0.0.1 and through ``LocalBackend``.

    Both sides return the same ``PredictionResult`` (mask, probabilities, every map, review ranking).
    One warm-up call per side loads the model, so the medians compare steady-state requests.

    Parameters
    ----------
    model_dir : Path
        Trained model folder (served as model ``bench``).
    shape : tuple of int
        Volume shape.
    repeats : int
        Timed calls per side (after the warm-up).
    device : str
        Device of both the server and the in-process engine.
    threads : int or None
        CPU threads of the server process; pass the in-process engine's (``torch.get_num_threads()``) so
        both sides compute with the same threads.

    Returns
    -------
    dict
        ``remote_s``, ``local_s`` (medians, seconds), ``ratio`` (remote / local), ``remote_all_s``,
        ``local_all_s``, ``remote_phases`` (median upload/request/download s), ``shape``, ``device``, ``threads``.
    """
    volume = ellipsoid_volume(tuple(shape))
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        local_times = _time_local(volume, Path(model_dir), Path(tmp) / "local", device, repeats)
        remote_times, phases = _time_remote(volume, Path(model_dir), Path(tmp) / "server", device, threads, repeats)
    remote_s, local_s = statistics.median(remote_times), statistics.median(local_times)
    keys = ("upload", "request", "download")
    return {
        "shape": list(shape),
        "device": device,
        "threads": threads,
        "repeats": repeats,
        "remote_s": remote_s,
        "local_s": local_s,
        "ratio": remote_s / local_s,
        "remote_all_s": remote_times,
        "local_all_s": local_times,
        "remote_phases": {k: statistics.median(p[k] for p in phases[1:]) for k in keys},
    }


def _time_local(volume: Volume, model_dir: Path, data_dir: Path, device: str, repeats: int) -> list[float]:
    """Seconds per ``LocalBackend.predict`` (warm-up first) on a fresh data folder serving ``model_dir``."""
    from napari_uqseg.client.local import LocalBackend

    local = LocalBackend(data_dir, device, models={"bench": model_dir}, jobs=False)
    try:
        return _time_calls(lambda: local.predict(volume, "bench"), repeats)
    finally:
        local.close()


def _time_remote(
    volume: Volume, model_dir: Path, data_dir: Path, device: str, threads: int | None, repeats: int
) -> tuple[list[float], list[dict[str, float]]]:
    """Seconds per ``RemoteBackend.predict`` against a loopback ``uqseg serve``, and each call's phase timings."""
    from napari_uqseg.client.remote import RemoteBackend
    from napari_uqseg.server.launcher import start_server

    server = start_server(data_dir, {"bench": model_dir}, device=device, threads=threads)
    try:
        remote = RemoteBackend(server.url, server.token)
        phases: list[dict[str, float]] = []

        def call() -> None:
            phases.append(remote.predict(volume, "bench").timings)

        times = _time_calls(call, repeats)
        remote.close()
    finally:
        server.stop()
    return times, phases


def _time_calls(call: Any, repeats: int) -> list[float]:
    call()  # warm-up: model load, allocator, first-touch of pages
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times
