"""``uqseg bench``: cost of every method as ratios to the deterministic U-Net; JSON, a table, docs/benchmarks.md."""

from __future__ import annotations

import argparse
import shlex
import sys

from napari_uqseg.cli.bench_perf import add_perf_arguments, perf_requested, run_perf
from napari_uqseg.cli.tta_option import TTA_CHOICES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time and memory of every method relative to the deterministic U-Net (same input, device, run)",
        description="Measures inference time (patch, hippocampus volume), peak memory (fresh process per method), "
        "streaming memory (2 vs 20 samples), a CT-sized volume, training cost and remote vs local predict; "
        "writes JSON, prints a table and appends a section with the machine description to the markdown file.",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--size", default="patch,hippocampus,ct", help="comma-separated among patch, hippocampus, ct")
    p.add_argument("--quick", action="store_true", help="tiny sizes and 2 repeats (about a minute on a CPU)")
    p.add_argument("--methods", help="comma-separated methods (default: every registered method)")
    p.add_argument("--repeats", type=int, help="timed repeats per method and size (default 3, quick 2)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory and CT measurements")
    p.add_argument("--no-remote", action="store_true", help="skip remote (loopback HTTP) vs local predict")
    p.add_argument("--remote-shape", default="128,128,128", help="volume of the remote vs local case (quick: 32^3)")
    p.add_argument("--tta", default="flips", choices=TTA_CHOICES, help="also time each method with this TTA (none: no)")
    p.add_argument("--out", default="bench_results.json", help="JSON file to write")
    p.add_argument("--markdown", default="docs/benchmarks.md", help="markdown file to append a section to")
    p.add_argument("--no-markdown", action="store_true", help="do not append to the markdown file")
    add_perf_arguments(p)
    p.set_defaults(run=run)


def _shape(text: str, option: str) -> tuple[int, ...]:
    from napari_uqseg.core.errors import InputError

    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise InputError(option, f"expected comma-separated integers, got {text!r}") from exc
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(option, f"expected three positive sizes, got {text!r}")
    return shape


def remote_vs_local(settings, shape: tuple[int, ...]) -> dict:
    """``bench.loopback`` on an untrained deterministic model; ``{"error": ...}`` if it cannot run."""
    import tempfile
    from pathlib import Path

    from napari_uqseg.bench.method_costs import LABELS, build_untrained
    from napari_uqseg.engine.model_folder import save_model

    try:
        from napari_uqseg.bench.loopback import loopback_bench
    except ImportError as exc:  # the server extra (fastapi, uvicorn) is not installed
        return {"error": f"loopback bench not available ({exc})"}
    with tempfile.TemporaryDirectory(prefix="uqseg-bench-remote-") as tmp:
        model = save_model(
            build_untrained("deterministic", settings.channels, settings.patch), Path(tmp) / "m", LABELS, {}
        )
        import torch

        return loopback_bench(model, shape, settings.repeats, settings.device, tmp, torch.get_num_threads())


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from napari_uqseg.bench.method_costs import bench_settings, run_bench
    from napari_uqseg.bench.report import append_markdown, evaluate_targets, format_table, markdown_section
    from napari_uqseg.cli.progress_bar import progress_bar

    if perf_requested(args):
        return run_perf(args)
    overrides = {"device": args.device, "cases": tuple(c.strip() for c in args.size.split(",") if c.strip())}
    if args.methods:
        overrides["methods"] = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if args.repeats:
        overrides["repeats"] = args.repeats
    if args.no_memory:
        overrides["memory"] = False
    overrides["tta"] = args.tta
    settings = bench_settings(args.quick, **overrides)
    remote_shape = (
        (32, 32, 32)
        if args.quick and args.remote_shape == "128,128,128"
        else _shape(args.remote_shape, "--remote-shape")
    )
    with progress_bar("bench") as progress:
        results = run_bench(settings, progress)
    if not args.no_remote:
        print("remote vs local predict ...", file=sys.stderr)
        results["remote"] = remote_vs_local(settings, remote_shape)
    results["targets"] = evaluate_targets(results)
    command = shlex.join(["uqseg", *sys.argv[1:]]) if sys.argv[1:2] == ["bench"] else "uqseg bench"
    results["command"] = command
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=list))
    print(format_table(results), end="")
    print(f"results written to {out}")
    if not args.no_markdown:
        print(f"section appended to {append_markdown(args.markdown, markdown_section(results, command))}")
    return 0
