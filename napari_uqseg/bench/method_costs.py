"""``uqseg bench``: inference time, peak memory and training cost of every method as ratios to the
deterministic U-Net, measured side by side in one run on the same inputs and device.

Timing runs in this process, each method paired with a deterministic run right before it (the ratio of
the pair, so load from other processes cancels out), after one warm-up call; the median and the
inter-quartile range of the per-repeat ratios are reported. Peak memory comes from a fresh process
per measurement (``bench_memory``). Weights are untrained or trained for a few steps only: time and memory do
not depend on the weights' values. Formatting and targets live in ``bench_report``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_uqseg.bench.memory import LABELS, bench_volume, build_untrained, memory_in_subprocess
from napari_uqseg.bench.paired import paired_ratio
from napari_uqseg.core.errors import InputError, UQSegError
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.data import Case, normalise
from napari_uqseg.engine.device import resolve_device
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, registered_methods
from napari_uqseg.engine.model_folder import save_model
from napari_uqseg.engine.training import TrainConfig
from napari_uqseg.engine.tta import with_tta

CASES = ("patch", "hippocampus", "ct")


@dataclass
class BenchSettings:
    """What ``uqseg bench`` measures; shapes are voxels ``(I, J, K)``.

    Attributes
    ----------
    device : str
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
    methods : tuple of str
        Methods to measure (empty: every registered one); ``deterministic`` is always added.
    channels, patch : tuple of int
        U-Net widths and sliding-window patch of the patch and hippocampus cases.
    small_patch, hippocampus_shape : tuple of int
        One window through ``window_statistics``; one volume through ``predict_volume``.
    ct_shape, ct_channels, ct_patch, ct_methods : ...
        The CT-sized case: one ``predict_volume`` per listed method (name -> options), peak memory and
        time; a narrower U-Net keeps its time affordable on a CPU (the full-size accumulators, which
        dominate memory, do not depend on the width).
    stream_samples : tuple of int
        MC-Dropout sample counts whose peak memory is compared (streaming statistics).
    repeats : int
        Timed repeats per method and case (after one warm-up call).
    train_patch, train_batch, train_iterations : ...
        The short training run every method does (same config for all): training cost and ready weights.
        48 steps is the least that gives a checkpoint ensemble its default 3 cycles x 4 checkpoints.
    options : dict
        Method name -> options replacing defaults (``--quick`` shrinks the recipes that need many steps).
    slow_call_s : float
        A method whose warm-up call takes longer than this is timed once instead of ``repeats`` times.
    cases : tuple of str
        Among ``patch``, ``hippocampus`` (time, and peak memory per method) and ``ct``.
    memory : bool
        Measure peak memory (fresh subprocesses); ``False`` skips the memory and CT measurements.
    tta : str
        Also time every method under this test-time augmentation mode (rows ``<method>+tta``); ``"none"``: no.
    """

    device: str = "cpu"
    methods: tuple[str, ...] = ()
    channels: tuple[int, ...] = (16, 32, 64, 128)
    patch: tuple[int, ...] = (40, 56, 40)
    small_patch: tuple[int, ...] = (32, 32, 32)
    hippocampus_shape: tuple[int, ...] = (36, 50, 36)
    ct_shape: tuple[int, ...] = (512, 512, 300)
    ct_channels: tuple[int, ...] = (4, 8, 16, 32)
    ct_patch: tuple[int, ...] = (128, 128, 128)
    ct_methods: dict[str, dict] = field(default_factory=lambda: {"deterministic": {}, "mc_dropout": {"samples": 2}})
    stream_samples: tuple[int, int] = (2, 20)
    repeats: int = 3
    train_patch: tuple[int, ...] = (16, 16, 16)
    train_batch: int = 2
    train_iterations: int = 48
    options: dict[str, dict] = field(default_factory=dict)
    slow_call_s: float = 60.0
    cases: tuple[str, ...] = CASES
    memory: bool = True
    quick: bool = False
    tta: str = "flips"

    def __post_init__(self) -> None:
        bad = [c for c in self.cases if c not in CASES]
        if bad:
            raise InputError("--size", f"unknown size(s) {bad}; known: {', '.join(CASES)}")


#: ``--quick``: the same measurements on tiny sizes (about a minute on two CPU cores)
QUICK = {
    "channels": (4, 8, 16),
    "patch": (16, 16, 16),
    "small_patch": (16, 16, 16),
    "hippocampus_shape": (20, 24, 20),
    "ct_shape": (64, 64, 48),
    "ct_channels": (4, 8, 16),
    "ct_patch": (32, 32, 32),
    "repeats": 2,
    "train_patch": (16, 16, 16),
    "train_iterations": 8,
    "options": {
        "checkpoint_ensemble": {"cycles": 2, "checkpoints_per_cycle": 2, "gamma": 0.5},
        "swa": {"cycles": 2, "checkpoints_per_cycle": 2, "gamma": 0.5},
        "dudes": {"teacher_members": 2},
    },
    "quick": True,
}


def bench_settings(quick: bool = False, **overrides: Any) -> BenchSettings:
    """Full or ``quick`` settings with ``overrides`` (unknown names raise ``InputError``)."""
    base = BenchSettings(**QUICK) if quick else BenchSettings()
    try:
        return replace(base, **overrides)
    except TypeError as exc:
        raise InputError("bench settings", str(exc)) from exc


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of ``fn()`` (device work included)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _summary(values: list[float]) -> dict[str, float]:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return {"median": float(q50), "q25": float(q25), "q75": float(q75)}


# -- training -----------------------------------------------------------------------------------


def _training_data(settings: BenchSettings) -> TrainingData:
    shape = tuple(max(s, 24) for s in settings.train_patch)
    cases = []
    for i in range(5):
        image, label = synthetic_case(shape, seed=i, num_classes=len(LABELS))
        cases.append(Case(f"bench_{i + 1:03d}", normalise(image.array), label.array, image.affine))
    return TrainingData(cases[:4], cases[4:], len(LABELS))


def _network_histories(summary: Any) -> list[dict]:
    """Every ``fit_network`` history inside a method's training summary."""
    if isinstance(summary, dict):
        if {"iterations", "seconds", "losses"} <= set(summary):
            return [summary]
        return [h for value in summary.values() for h in _network_histories(value)]
    return []


def train_briefly(method: UQMethod, settings: BenchSettings, data: TrainingData) -> dict[str, float]:
    """Fit ``method`` for ``settings.train_iterations`` steps per network; its cost figures.

    Returns ``seconds`` (the whole recipe: every network, saliency, distillation, calibration),
    ``steps`` (optimiser steps over all networks) and ``step_seconds`` (mean time of one step).
    """
    cfg = TrainConfig(
        patch_size=settings.train_patch,
        batch_size=settings.train_batch,
        iterations=settings.train_iterations,
        checkpoint_every=10**9,
        optimizer="adam",
        lr=1e-3,
    )
    start = time.perf_counter()
    summary = method.fit(data, cfg, no_progress, None)
    seconds = time.perf_counter() - start
    histories = _network_histories(summary)
    steps = sum(int(h["iterations"]) for h in histories)
    loop = sum(float(h["seconds"]) for h in histories)
    return {"seconds": seconds, "steps": steps, "step_seconds": loop / steps if steps else float("nan")}


# -- the harness --------------------------------------------------------------------------------


def _time_inference(
    methods: dict[str, UQMethod], settings: BenchSettings, device: torch.device, progress: Progress
) -> dict[str, dict]:
    """Per method and case: median seconds and the paired ratio to the deterministic net (median, IQR)."""
    x = torch.randn(1, 1, *settings.small_patch).to(device)
    volume = bench_volume(settings.hippocampus_shape)
    calls: dict[str, Callable[[UQMethod], object]] = {
        "patch": lambda m: m.window_statistics(x),
        "hippocampus": lambda m: predict_volume(m, volume),
    }
    cases = {case: fn for case, fn in calls.items() if case in settings.cases}
    det = methods["deterministic"]
    out: dict[str, dict] = {name: {} for name in methods}
    total, done = len(cases) * len(methods), 0
    with torch.no_grad():
        for case, fn in cases.items():
            for name, method in methods.items():
                done += 1
                progress(done, total, f"timing {name} on {case}")
                method.eval()
                warm = _timed(partial(fn, method), device)  # warm-up: lazy stacks, allocator, oneDNN primitives
                seconds, ratios = [], []
                for _ in range(1 if warm > settings.slow_call_s else settings.repeats):
                    base = _timed(partial(fn, det), device)
                    took = base if method is det else _timed(partial(fn, method), device)
                    seconds.append(took)
                    ratios.append(took / base)
                out[name][case] = {"seconds": _summary(seconds), "ratio": _summary(ratios)}
    return out


def run_bench(settings: BenchSettings, progress: Progress = no_progress) -> dict[str, Any]:
    """Measure every method; returns the JSON-able results ``bench_report`` formats.

    Keys: ``settings``, ``machine``, ``methods`` (per method: ``passes``, ``samples``, ``parameters``,
    ``train``, ``inference``, ``memory``), ``streaming``, ``ct``, ``errors``.

    Raises
    ------
    InputError
        Unknown method names or device; the deterministic baseline failing.
    """
    from napari_uqseg.bench.report import machine_description

    device = resolve_device(settings.device)
    known = registered_methods()
    names = ["deterministic"] + [n for n in (settings.methods or sorted(known)) if n != "deterministic"]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError("--methods", f"unknown method(s) {unknown}; known: {', '.join(sorted(known))}")
    results: dict[str, Any] = {
        "settings": asdict(settings),
        "machine": machine_description(device),
        "methods": {},
        "errors": {},
    }
    data = _training_data(settings)
    methods: dict[str, UQMethod] = {}
    warm_up = replace(settings, train_iterations=2)  # first fit in a process pays one-off costs: not measured
    train_briefly(build_untrained("deterministic", settings.channels, settings.patch).to(device), warm_up, data)
    with tempfile.TemporaryDirectory(prefix="uqseg-bench-") as tmp:
        for i, name in enumerate(names):
            progress(i, len(names), f"training {name} for {settings.train_iterations} steps")
            try:
                options = settings.options.get(name, {})
                method = build_untrained(name, settings.channels, settings.patch, options).to(device)
                train = train_briefly(method, settings, data)
                method.to("cpu")
                save_model(method, Path(tmp) / name, LABELS, {})  # the memory worker loads it
                methods[name] = method.to(device)
            except (UQSegError, RuntimeError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
                if name == "deterministic":
                    raise
                results["errors"][name] = f"{exc.__class__.__name__}: {exc}"
                continue
            results["methods"][name] = {
                "options": options,
                "passes": method.forward_passes(),
                "samples": method.n_samples(),
                "parameters": method.parameter_count(),
                "train": train,
            }
        base = results["methods"]["deterministic"]["train"]
        for entry in results["methods"].values():
            entry["train"]["ratio"] = entry["train"]["seconds"] / base["seconds"]
            entry["train"]["step_ratio"] = entry["train"]["step_seconds"] / base["step_seconds"]
        for name, timing in _time_inference(methods, settings, device, progress).items():
            results["methods"][name]["inference"] = timing
        if settings.memory:
            _measure_memories(results, methods, settings, Path(tmp), progress)
    if settings.tta != "none":
        _time_tta(results, methods, settings, device, progress)
    return results


def _time_tta(
    results: dict[str, Any], methods: dict[str, UQMethod], settings: BenchSettings, device: torch.device, progress
) -> None:
    """Rows ``<method>+tta``: each trained method wrapped in ``settings.tta``, timed against the plain net."""
    wrapped = {f"{name}+tta": with_tta(method, settings.tta) for name, method in methods.items()}
    timings = _time_inference({"deterministic": methods["deterministic"], **wrapped}, settings, device, progress)
    for name, method in wrapped.items():
        base = results["methods"][name.removesuffix("+tta")]
        results["methods"][name] = {
            "options": {**base["options"], "tta": settings.tta},
            "passes": method.forward_passes(),
            "samples": method.n_samples(),
            "parameters": base["parameters"],
            "train": dict(base["train"]),  # the same trained networks
            "inference": timings[name],
        }


def _measure_memories(
    results: dict[str, Any], methods: dict[str, UQMethod], settings: BenchSettings, tmp: Path, progress: Progress
) -> None:
    """Peak memory per method (hippocampus volume), of MC-Dropout at two sample counts, and the CT case."""
    hippo, ct = "hippocampus" in settings.cases, "ct" in settings.cases
    total = (len(methods) + len(settings.stream_samples)) * hippo + len(settings.ct_methods) * ct
    step = 0
    for name in methods if hippo else []:
        step += 1
        progress(step, total, f"peak memory of {name}")
        spec = {"device": settings.device, "shape": settings.hippocampus_shape, "model_dir": str(tmp / name)}
        results["methods"][name]["memory"] = memory_in_subprocess(spec)
    base = results["methods"]["deterministic"].get("memory", {}).get("increment_mb")
    for entry in results["methods"].values():
        if base and "increment_mb" in entry.get("memory", {}):
            entry["memory"]["ratio"] = entry["memory"]["increment_mb"] / base
    streaming = {}
    for samples in settings.stream_samples if hippo else []:
        step += 1
        progress(step, total, f"peak memory of mc_dropout with {samples} samples")
        spec = {"device": settings.device, "shape": settings.hippocampus_shape, "method": "mc_dropout"}
        spec |= {"channels": settings.channels, "patch": settings.patch, "options": {"samples": samples}}
        streaming[str(samples)] = memory_in_subprocess(spec)
    results["streaming"] = {"method": "mc_dropout", "by_samples": streaming}
    if not ct:
        return
    results["ct"] = {"shape": settings.ct_shape, "channels": settings.ct_channels, "patch": settings.ct_patch}
    for name, options in settings.ct_methods.items():
        step += 1
        progress(step, total, f"{name} on a {'x'.join(map(str, settings.ct_shape))} volume")
        spec = {"device": settings.device, "shape": settings.ct_shape, "method": name, "options": options}
        spec |= {"channels": settings.ct_channels, "patch": settings.ct_patch}
        results["ct"][name] = {"options": options, **memory_in_subprocess(spec)}


def stacked_vs_loop(
    batches: list[int],
    members: int = 3,
    channels: tuple[int, ...] = (16, 32, 64, 128),
    patch: tuple[int, ...] = (40, 56, 40),
    repeats: int = 3,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """A deep ensemble's stacked forward (one ``torch.func`` call) against its member loop, per batch of windows.

    Returns one row per batch size: ``batch``, median ``stacked_s`` and ``loop_s`` and ``ratio`` (stacked /
    loop, the median of pairs timed alternately after a warm-up of each).
    """
    dev = resolve_device(device)
    method = build_untrained("deep_ensemble", channels, patch, {"members": members}).to(dev)
    method.eval()
    forward, params, buffers = method.stacked_forward()
    rows = []
    with torch.no_grad():
        for batch in batches:
            x = torch.randn(batch, 1, *patch, device=dev)
            calls = (partial(forward, params, buffers, x), partial(_member_loop, method.members(), x))
            for call in calls:
                call()
            pairs = [[_timed(call, dev) for call in calls] for _ in range(repeats)]
            rows.append(
                {
                    "batch": batch,
                    "stacked_s": float(np.median([p[0] for p in pairs])),
                    "loop_s": float(np.median([p[1] for p in pairs])),
                    "ratio": paired_ratio([p[0] for p in pairs], [p[1] for p in pairs]),
                }
            )
    return rows


def _member_loop(members: list[torch.nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    return [net(x) for net in members]
