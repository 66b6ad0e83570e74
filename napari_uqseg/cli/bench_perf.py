"""``uqseg bench --curves/--floor/--precision-check/--train-precision/--stack-batches``: cost curves (PNGs), the
plain-MONAI floor, inference and training precision, the deep ensemble's stacked forward.

These runs replace the method-ratio benchmark when one of their flags is given; results go to the JSON
file, the figures to ``--figures`` and a section (with the command and the machine's state) to the
markdown file.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

CURVES = ("size", "samples", "clients")


def add_perf_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--curves", help=f"comma-separated cost curves among {', '.join(CURVES)} (PNGs in --figures)")
    p.add_argument("--figures", default="docs/figures", help="folder of the curve PNGs (default docs/figures)")
    p.add_argument("--curve-shapes", help="size curve shapes, e.g. 64,64,64;512,512,300 (default 64^3 .. CT)")
    p.add_argument("--curve-samples", default="2,4,8,16,32", help="MC-Dropout sample counts of the samples curve")
    p.add_argument("--curve-clients", default="1,2,4,8,16", help="concurrent clients of the clients curve")
    p.add_argument("--floor", metavar="SHAPE", help="time predict_volume against plain MONAI on this shape")
    p.add_argument("--precision-check", action="store_true", help="float32 vs bfloat16 on the starter model")
    p.add_argument(
        "--train-precision", action="store_true", help="seconds per U-Net training step, float32 vs bfloat16"
    )
    p.add_argument("--precision", default="auto", help="network precision of --floor: auto, float32, bfloat16")
    p.add_argument(
        "--stack-batches",
        help="deep ensemble (3 members) stacked forward vs member loop per batch of 40x56x40 windows, e.g. 1,2,4",
    )
    p.add_argument(
        "--remote-shapes",
        help="remote (loopback) vs local predict on each shape, e.g. 128,128,128;512,512,300 (window 40x56x40 below "
        "256^3 voxels, 128^3 above; warm-up on 64^3)",
    )


def perf_requested(args: argparse.Namespace) -> bool:
    return bool(
        args.curves
        or args.floor
        or args.precision_check
        or args.train_precision
        or args.remote_shapes
        or args.stack_batches
    )


def _shapes(text: str) -> list[tuple[int, ...]]:
    from napari_uqseg.core.errors import InputError

    try:
        shapes = [tuple(int(v) for v in part.split(",")) for part in text.split(";") if part.strip()]
    except ValueError as exc:
        raise InputError("--curve-shapes", f"expected shapes like 64,64,64;128,128,128, got {text!r}") from exc
    if not shapes or any(len(s) != 3 or min(s) < 1 for s in shapes):
        raise InputError("--curve-shapes", f"expected 3-D shapes, got {text!r}")
    return shapes


def _ints(text: str, option: str) -> list[int]:
    from napari_uqseg.core.errors import InputError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise InputError(option, f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise InputError(option, f"expected positive integers, got {text!r}")
    return values


def _clients_curve(args: argparse.Namespace, progress) -> list[dict[str, Any]]:
    import torch

    from napari_uqseg.bench.memory import LABELS, build_untrained
    from napari_uqseg.bench.throughput import throughput_curve
    from napari_uqseg.engine.model_folder import save_model

    with tempfile.TemporaryDirectory(prefix="uqseg-bench-clients-") as tmp:
        net = build_untrained("deterministic", (16, 32, 64, 128), (64, 64, 64))
        model = save_model(net, Path(tmp) / "m", LABELS, {})
        clients = _ints(args.curve_clients, "--curve-clients")
        return throughput_curve(model, clients, device=args.device, threads=torch.get_num_threads(), progress=progress)


def _curves(args: argparse.Namespace, results: dict[str, Any], progress) -> list[Path]:
    from napari_uqseg.bench import cost_curves as cc
    from napari_uqseg.core.errors import InputError

    names = [c.strip() for c in args.curves.split(",") if c.strip()]
    unknown = [c for c in names if c not in CURVES]
    if unknown:
        raise InputError("--curves", f"unknown curve(s) {unknown}; known: {', '.join(CURVES)}")
    figures, out = [], Path(args.figures)
    if "size" in names:
        shapes = _shapes(args.curve_shapes) if args.curve_shapes else cc.CURVE_SHAPES
        results["size"] = cc.size_curve(shapes, device=args.device, progress=progress)
        title = "deterministic U-Net (16, 32, 64, 128), window 128^3: time and peak memory vs volume size"
        figures.append(cc.plot_size_curve(results["size"], out / "cost_vs_size.png", title))
    if "samples" in names:
        samples = _ints(args.curve_samples, "--curve-samples")
        results["samples"] = cc.samples_curve(samples, device=args.device, progress=progress)
        title = "MC-Dropout, U-Net (16, 32, 64, 128), 128^3 volume: time and peak memory vs samples"
        figures.append(cc.plot_samples_curve(results["samples"], out / "cost_vs_samples.png", title))
    if "clients" in names:
        results["clients"] = _clients_curve(args, progress)
        panels = (("throughput_per_s", "predictions / s"), ("latency_median_s", "median latency (s)"))
        title = "one server, deterministic U-Net (16, 32, 64, 128), 64^3 volumes: throughput vs concurrent clients"
        path = out / "throughput_vs_clients.png"
        figures.append(cc.plot_curve(results["clients"], "clients", panels, title, path, "clients", log_x=True))
    return figures


def run_perf(args: argparse.Namespace) -> int:
    """Run the requested perf measurements; write JSON, PNGs and a markdown section."""
    import torch

    from napari_uqseg.bench.report import append_markdown, machine_description
    from napari_uqseg.cli.progress_bar import progress_bar

    results: dict[str, Any] = {"machine": machine_description(torch.device("cpu")), "threads": torch.get_num_threads()}
    results["load_before"] = os.getloadavg()
    figures: list[Path] = []
    with progress_bar("bench") as progress:
        if args.precision_check:
            from napari_uqseg.bench.precision_check import precision_check

            results["precision_check"] = precision_check()
        if args.train_precision:
            from napari_uqseg.bench.train_precision import train_step_precision

            results["train_precision"] = train_step_precision(repeats=args.repeats or 5)
        if args.floor:
            results["floor"] = _floor(args)
        if args.remote_shapes:
            results["remote"] = [_remote(args, shape) for shape in _shapes(args.remote_shapes)]
        if args.stack_batches:
            from napari_uqseg.bench.method_costs import stacked_vs_loop

            batches = _ints(args.stack_batches, "--stack-batches")
            results["stack"] = stacked_vs_loop(batches, repeats=args.repeats or 3, device=args.device)
        if args.curves:
            figures = _curves(args, results, progress)
    results["load_after"] = os.getloadavg()
    command = shlex.join(["uqseg", *sys.argv[1:]]) if sys.argv[1:2] == ["bench"] else "uqseg bench"
    results["command"] = command
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=list))
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=1, default=list))
    print(f"results written to {out}; figures: {[str(f) for f in figures]}")
    if not args.no_markdown:
        from napari_uqseg.bench.perf_report import perf_section

        print(f"section appended to {append_markdown(args.markdown, perf_section(results, figures, args.markdown))}")
    return 0


def _floor(args: argparse.Namespace) -> dict[str, Any]:
    from napari_uqseg.bench.memory import bench_volume, build_untrained
    from napari_uqseg.bench.monai_floor import side_by_side
    from napari_uqseg.cli.bench import _shape

    shape = _shape(args.floor, "--floor")
    method = build_untrained("deterministic", (16, 32, 64, 128), tuple(min(128, s) for s in shape))
    return side_by_side(method, bench_volume(shape), repeats=args.repeats or 1, precision=args.precision)


def _remote(args: argparse.Namespace, shape: tuple[int, ...]) -> dict[str, Any]:
    import torch

    from napari_uqseg.bench.loopback import loopback_bench
    from napari_uqseg.bench.memory import LABELS, build_untrained
    from napari_uqseg.engine.model_folder import save_model

    patch = (40, 56, 40) if shape[0] * shape[1] * shape[2] < 256**3 else (128, 128, 128)
    with tempfile.TemporaryDirectory(prefix="uqseg-bench-remote-") as tmp:
        model = save_model(build_untrained("deterministic", (16, 32, 64, 128), patch), Path(tmp) / "m", LABELS, {})
        threads = torch.get_num_threads()
        out = loopback_bench(model, shape, args.repeats or 1, args.device, tmp, threads, warmup_shape=(64, 64, 64))
    return {**out, "patch": list(patch)}
