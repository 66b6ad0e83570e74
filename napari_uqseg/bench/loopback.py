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

from napari_uqseg.bench.paired import paired_ratio
from napari_uqseg.core.volume import Volume


def ellipsoid_mask(shape: tuple[int, ...]) -> np.ndarray:
    """The ellipsoid of :func:`ellipsoid_volume`: voxels within ``sqrt(0.4)`` of the centre in ``[-1, 1]^3``."""
    grid = np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in shape], indexing="ij")
    return sum(g**2 for g in grid) < 0.4


def ellipsoid_volume(shape: tuple[int, ...], seed: int = 0) -> Volume:
    """A noisy float32 test volume of ``shape`` with a bright ellipsoid (1 mm voxels)."""
    rng = np.random.default_rng(seed)
    array = (ellipsoid_mask(shape) * 100.0 + rng.normal(300, 30, shape)).astype(np.float32)
    return Volume(array, np.eye(4))


def loopback_bench(
    model_dir: str | Path,
    shape: tuple[int, ...] = (128, 128, 128),
    repeats: int = 3,
    device: str = "cpu",
    work_dir: str | Path | None = None,
    threads: int | None = None,
    warmup_shape: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Median predict time through ``RemoteBackend`` on 127.0.0.1 and through ``LocalBackend``.

    Both sides return the same ``PredictionResult`` (mask, probabilities, every map, review ranking).
    One warm-up call per side loads the model, so the medians compare steady-state requests; the timed calls
    alternate between the sides, so that load from other processes falls on both.

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
    warmup_shape : tuple of int or None
        Volume of the warm-up calls (default ``shape``; a smaller one keeps a CT-sized case affordable).

    Returns
    -------
    dict
        ``remote_s``, ``local_s`` (medians, seconds), ``ratio`` (median of the pairs' remote / local), ``remote_all_s``,
        ``local_all_s``, ``remote_phases`` (median s of the client's upload/request/download and the server's
        inference/review/encode), ``wire`` (median body bytes sent and received per prediction), ``roi``
        (bytes received for the last prediction's outputs whole, as the region of interest the viewers ask for,
        and cropped to the ellipsoid's box grown by the same margin: ``roi_wire``), ``shape``, ``device``,
        ``threads``.
    """
    volume = ellipsoid_volume(tuple(shape))
    warm = ellipsoid_volume(tuple(warmup_shape)) if warmup_shape else volume
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        timed = _alternate(volume, warm, Path(model_dir), Path(tmp), device, threads, repeats)
    local_times, remote_times, phases, wire, roi = timed
    remote_s, local_s = statistics.median(remote_times), statistics.median(local_times)
    keys = ("upload", "request", "download", "inference", "review", "encode")
    return {
        "shape": list(shape),
        "device": device,
        "threads": threads,
        "repeats": repeats,
        "remote_s": remote_s,
        "local_s": local_s,
        "ratio": paired_ratio(remote_times, local_times),
        "remote_all_s": remote_times,
        "local_all_s": local_times,
        "remote_phases": {k: statistics.median(p.get(k, 0.0) for p in phases) for k in keys},
        "wire": {k: statistics.median(w[k] for w in wire) for k in ("sent_bytes", "received_bytes")},
        "roi": roi,
    }


def roi_wire(remote: Any, prediction_id: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """Bytes received fetching one prediction's outputs whole, as its region of interest, and in a viewer's box.

    The region of interest is ``client.output_download.region_of_interest`` at ``ROI_MARGIN`` (what the napari
    plugin and Slicer ask for; ``None`` when it covers the image); the viewer's box is the test volume's
    ellipsoid grown by the same margin. Each fetch includes the summary's JSON (a few kB).
    """
    from napari_uqseg.client.output_download import ROI_MARGIN
    from napari_uqseg.core.output_box import box_text, foreground_box, grow_box

    def received(box: str | None = None, margin: int | None = None) -> tuple[int, Any]:
        remote.roi_margin, before = margin, remote.bytes_received
        result = remote.fetch_prediction(prediction_id, box=box)
        return remote.bytes_received - before, result.prediction.info.get("roi", {}).get("box")

    viewer = grow_box(foreground_box(ellipsoid_mask(shape)), ROI_MARGIN, shape)
    whole, _ = received()
    roi_bytes, roi_box = received(margin=ROI_MARGIN)
    viewer_bytes, _ = received(box=box_text(viewer))
    remote.roi_margin = None
    voxels = float(np.prod(shape))
    return {
        "margin": ROI_MARGIN,
        "whole_bytes": whole,
        "roi_bytes": roi_bytes,
        "roi_box": roi_box,
        "viewer_box": [list(b) for b in viewer],
        "viewer_box_fraction": float(np.prod([b - a for a, b in viewer])) / voxels,
        "viewer_box_bytes": viewer_bytes,
    }


def _alternate(
    volume: Volume, warm: Volume, model_dir: Path, tmp: Path, device: str, threads: int | None, repeats: int
) -> tuple[list[float], list[float], list[dict[str, float]], list[dict[str, int]], dict[str, Any]]:
    """Local and remote seconds per call (alternating, after a warm-up of each), the remote phases and bytes,
    and the bytes of region-of-interest fetches of the last prediction (:func:`roi_wire`)."""
    from napari_uqseg.client.local import LocalBackend
    from napari_uqseg.client.remote import RemoteBackend
    from napari_uqseg.server.launcher import start_server

    local_times, remote_times, phases, wire = [], [], [], []
    local = LocalBackend(tmp / "local", device, models={"bench": model_dir}, jobs=False)
    server = start_server(tmp / "server", {"bench": model_dir}, device=device, threads=threads)
    try:
        remote = RemoteBackend(server.url, server.token)
        local.predict(warm, "bench")  # warm-up: model load, allocator, first-touch of pages
        remote.predict(warm, "bench")
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            local.predict(volume, "bench")
            local_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = remote.predict(volume, "bench")
            remote_times.append(time.perf_counter() - start)
            phases.append(result.timings)
            wire.append(result.prediction.info["wire"])
        roi = roi_wire(remote, result.id, tuple(volume.shape))
        remote.close()
    finally:
        local.close()
        server.stop()
    return local_times, remote_times, phases, wire, roi
