"""Cost curves of ``uqseg bench --curves``: time and peak memory against volume size and sample count.

Every point is one ``predict_volume`` in a fresh process (``bench.memory.memory_in_subprocess``): wall
seconds and the peak resident memory of the whole process, also per voxel. The server-throughput curve
lives in ``bench.throughput`` (it drives a server); ``plot_curve`` draws any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from napari_uqseg.bench.memory import memory_in_subprocess
from napari_uqseg.core.progress import Progress, no_progress

#: volume shapes of the size curve, 64^3 to a CT (512 x 512 x 300)
CURVE_SHAPES = ((64, 64, 64), (128, 128, 128), (192, 192, 192), (256, 256, 256), (512, 512, 300))
CURVE_SAMPLES = (2, 4, 8, 16, 32)
MB = 2.0**20


def _point(spec: dict[str, Any], voxels: int) -> dict[str, Any]:
    out = memory_in_subprocess(spec)
    if "error" not in out:
        out["bytes_per_voxel"] = out["rss_peak_mb"] * MB / voxels
        out["seconds_per_mvoxel"] = out["seconds"] / (voxels / 1e6)
    return out


def size_curve(
    shapes: Sequence[Sequence[int]] = CURVE_SHAPES,
    method: str = "deterministic",
    options: dict | None = None,
    channels: Sequence[int] = (16, 32, 64, 128),
    patch: Sequence[int] = (128, 128, 128),
    device: str = "cpu",
    progress: Progress = no_progress,
) -> list[dict[str, Any]]:
    """One point per volume shape: ``shape``, ``voxels``, ``seconds``, ``rss_peak_mb``, ``bytes_per_voxel``."""
    points = []
    for i, shape in enumerate(shapes):
        progress(i, len(shapes), f"{method} on {'x'.join(map(str, shape))}")
        voxels = int(shape[0]) * int(shape[1]) * int(shape[2])
        spec = {"device": device, "shape": list(shape), "method": method, "options": options or {}}
        spec |= {"channels": list(channels), "patch": list(patch)}
        points.append({"shape": list(shape), "voxels": voxels, **_point(spec, voxels)})
    return points


def samples_curve(
    samples: Sequence[int] = CURVE_SAMPLES,
    shape: Sequence[int] = (128, 128, 128),
    channels: Sequence[int] = (16, 32, 64, 128),
    patch: Sequence[int] = (128, 128, 128),
    device: str = "cpu",
    progress: Progress = no_progress,
) -> list[dict[str, Any]]:
    """One MC-Dropout point per sample count on one volume: ``samples``, ``seconds``, ``rss_peak_mb``, ..."""
    points = []
    voxels = int(shape[0]) * int(shape[1]) * int(shape[2])
    for i, n in enumerate(samples):
        progress(i, len(samples), f"mc_dropout with {n} samples")
        spec = {"device": device, "shape": list(shape), "method": "mc_dropout", "options": {"samples": int(n)}}
        spec |= {"channels": list(channels), "patch": list(patch)}
        points.append({"samples": int(n), "voxels": voxels, **_point(spec, voxels)})
    return points


def plot_curve(
    points: list[dict[str, Any]],
    x: str,
    panels: Sequence[tuple[str, str]],
    title: str,
    path: str | Path,
    xlabel: str,
    log_x: bool = False,
    x_of: Callable[[dict[str, Any]], float] | None = None,
) -> Path:
    """A PNG with one panel per ``(key, label)`` of ``panels`` against ``x`` (points with errors are left out)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    good = [p for p in points if "error" not in p]
    xs = [x_of(p) if x_of else p[x] for p in good]
    fig = Figure(figsize=(4.2 * len(panels), 3.4), dpi=110)
    FigureCanvasAgg(fig)
    for i, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.plot(xs, [p[key] for p in good], "o-")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_size_curve(points: list[dict[str, Any]], path: str | Path, title: str) -> Path:
    panels = (("seconds", "seconds"), ("rss_peak_mb", "peak RSS (MB)"), ("bytes_per_voxel", "peak bytes / voxel"))
    return plot_curve(points, "voxels", panels, title, path, "voxels (millions)", x_of=lambda p: p["voxels"] / 1e6)


def plot_samples_curve(points: list[dict[str, Any]], path: str | Path, title: str) -> Path:
    panels = (("seconds", "seconds"), ("rss_peak_mb", "peak RSS (MB)"))
    return plot_curve(points, "samples", panels, title, path, "MC-Dropout samples", log_x=True)
