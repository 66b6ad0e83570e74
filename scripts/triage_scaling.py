"""Triage throughput with the local executor and with 1 and 2 Ray actors, on the same cases, in one run.

Usage (the figure in docs/benchmarks.md was made by this command)::

    python scripts/triage_scaling.py --model MODEL --data DATA --cases 24 --markdown docs/benchmarks.md

Every configuration triages the same first ``--cases`` images into a fresh folder. Reported per
configuration: wall time of the whole ``triage`` call (worker / actor start included), throughput in cases
per minute and its ratio to the local executor with one worker, and the steady per-case time (between the
first and the last finished case, start-up excluded). The Ray cluster is started once, before the Ray
rows, and its start time is reported apart. "Per-case Ray overhead" = steady per-case time of one Ray
actor minus that of one local worker.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

CONFIGS = (("local", 1), ("local", 2), ("ray", 1), ("ray", 2))


def timed_triage(model: str, cases: list, executor: str, workers: int, out: Path) -> dict:
    from napari_uqseg.engine.triage import triage

    stamps: list[float] = []
    start = time.perf_counter()
    summary = triage(model, cases, out, executor, workers, progress=lambda d, t, m: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - start
    done = stamps[1:]  # the first call reports the start
    steady = (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1 else float("nan")
    assert summary["predicted"] == len(cases) and not summary["failed"], summary
    return {"executor": executor, "workers": workers, "wall_s": wall, "steady_s_per_case": steady}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--markdown", help="append a section to this file")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()

    import ray

    from napari_uqseg.engine.triage_cases import find_cases

    cases = find_cases(args.data)[: args.cases]
    rows = []
    ray_start_s = float("nan")
    with tempfile.TemporaryDirectory(prefix="uqseg-triage-scaling-") as tmp:
        for executor, workers in CONFIGS:
            if executor == "ray" and not ray.is_initialized():
                t = time.perf_counter()
                ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
                ray_start_s = time.perf_counter() - t
            out = Path(tmp) / f"{executor}{workers}"
            rows.append(timed_triage(args.model, cases, executor, workers, out))
            print(json.dumps(rows[-1]), flush=True)
    ray.shutdown()
    base = rows[0]
    for r in rows:
        r["cases_per_min"] = 60.0 * len(cases) / r["wall_s"]
        r["throughput_ratio"] = base["wall_s"] / r["wall_s"]
    ray1 = next(r for r in rows if r["executor"] == "ray" and r["workers"] == 1)
    overhead = ray1["steady_s_per_case"] - base["steady_s_per_case"]
    result = {"cases": len(cases), "ray_start_s": ray_start_s, "ray_overhead_s_per_case": overhead, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    text = markdown(result, args)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as fh:
            fh.write("\n" + text)


def markdown(result: dict, args: argparse.Namespace) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"## {when}: triage scaling, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load:.1f} at the end",
        "",
        f"`python scripts/triage_scaling.py --model {args.model} --data {args.data} --cases {args.cases}` "
        f"({result['cases']} cases, CPU, one torch thread per worker). Ratios are throughput against the local "
        "executor with one worker in the same run.",
        "",
        "| executor | workers | wall s | cases/min | throughput ratio | steady s/case |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['executor']} | {r['workers']} | {r['wall_s']:.1f} | {r['cases_per_min']:.1f} | "
            f"{r['throughput_ratio']:.2f}x | {r['steady_s_per_case']:.2f} |"
        )
    lines += [
        "",
        f"Ray cluster start (once, not in the rows): {result['ray_start_s']:.1f} s. Per-case Ray overhead "
        f"(steady s/case, 1 Ray actor minus 1 local worker): {result['ray_overhead_s_per_case']:+.2f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
