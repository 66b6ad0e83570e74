"""Peak memory of one prediction, measured in a fresh Python process (the worker of ``uqseg bench``).

Peak memory is the resident-set high-water mark (and, on CUDA, the allocator's peak) of a *fresh*
subprocess per measurement: torch's CPU allocations are invisible to ``tracemalloc``, and a fresh process
keeps allocator caches of earlier methods out of the figure.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.device import resolve_device
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.methods.base import UQMethod, method_class
from napari_uqseg.engine.model_folder import load_model
from napari_uqseg.engine.unet import UNetConfig

LABELS = {"0": "background", "1": "class_1", "2": "class_2"}
AFFINE = np.eye(4)


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_bytes() -> int:
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    import psutil  # not Linux: psutil (a server dependency) reads the RSS

    return int(psutil.Process().memory_info().rss)


class PeakMemory:
    """Peak resident memory of this process inside a ``with`` block, as bytes above the level at entry.

    Linux: the kernel's high-water mark ``VmHWM``, reset at entry through ``/proc/self/clear_refs``
    (exact, no sampling). Elsewhere: RSS sampled every 2 ms by a thread. On CUDA also the allocator's
    peak ``vram_peak`` (bytes).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = self.start = self.vram_peak = 0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.start = _rss_bytes()
        self._hwm = False
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
            self._hwm = _status_kb("VmHWM") is not None
        except OSError:
            pass
        if not self._hwm:
            self._samples = [self.start]
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._samples.append(_rss_bytes())

    def __exit__(self, *exc: object) -> None:
        if self._hwm:
            self.peak = (_status_kb("VmHWM") or 0) * 1024
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._samples + [_rss_bytes()])
        if self.device.type == "cuda":
            self.vram_peak = int(torch.cuda.max_memory_allocated(self.device))

    @property
    def increment(self) -> int:
        return max(0, self.peak - self.start)


def bench_volume(shape: tuple[int, ...], seed: int = 0) -> Volume:
    """A random MRI-like volume (content does not change time or memory)."""
    rng = np.random.default_rng(seed)
    return Volume((rng.standard_normal(shape, dtype=np.float32) * 100 + 300).astype(np.float32), AFFINE)


def build_untrained(
    name: str, channels: tuple[int, ...], patch: tuple[int, ...], options: dict | None = None
) -> UQMethod:
    """A method at its default (or given) options with freshly initialised weights."""
    method = method_class(name)(UNetConfig(channels=channels, num_classes=len(LABELS)), options or {})
    method.patch_size = tuple(patch)
    return method


def measure_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak memory and time of one ``predict_volume`` (this process must be fresh for a clean figure).

    ``spec``: ``device``, ``shape``, and either ``model_dir`` or ``method``/``channels``/``patch``/``options``;
    optionally ``predict``, keyword options of ``predict_volume`` (e.g. ``{"probability_classes": [1, 2]}``).
    Returns ``seconds``, ``rss_start_mb``, ``rss_peak_mb``, ``increment_mb`` (and ``vram_peak_mb`` on CUDA).
    """
    device = resolve_device(spec["device"])
    if "model_dir" in spec:
        method = load_model(spec["model_dir"], str(device))
    else:
        method = build_untrained(spec["method"], tuple(spec["channels"]), tuple(spec["patch"]), spec.get("options"))
        method.to(device)
    volume = bench_volume(tuple(spec["shape"]))
    with PeakMemory(device) as peak:
        start = time.perf_counter()
        predict_volume(method, volume, **spec.get("predict", {}))
        seconds = time.perf_counter() - start
    mb = 2.0**20
    out = {"seconds": seconds, "rss_start_mb": peak.start / mb, "rss_peak_mb": peak.peak / mb}
    out["increment_mb"] = peak.increment / mb
    if device.type == "cuda":
        out["vram_peak_mb"] = peak.vram_peak / mb
    return out


def memory_in_subprocess(spec: dict[str, Any], timeout_s: float = 3600) -> dict[str, Any]:
    """Run ``measure_memory(spec)`` in a fresh Python process; errors come back as ``{"error": ...}``."""
    cmd = [sys.executable, "-m", "napari_uqseg.bench.memory", json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-400:]}"}
    return json.loads(lines[-1])


if __name__ == "__main__":  # the memory worker: one measurement, one JSON line on stdout
    print(json.dumps(measure_memory(json.loads(sys.argv[1]))))
