"""The fault and load suite: bad inputs, load, kill -9 rounds and a full disk, written to docs/reliability.md.

``uqseg reliability`` runs it (``--size ci`` small, ``--size full`` the figures of the docs); the pytest
``tests/server/test_reliability.py`` runs the CI size and asserts the same targets.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_uqseg.bench.reliability.bad_inputs import run_bad_inputs
from napari_uqseg.bench.reliability.disk_full import run_disk_full
from napari_uqseg.bench.reliability.kill9 import run_kill9
from napari_uqseg.bench.reliability.load import run_load
from napari_uqseg.server.launcher import start_server


@dataclass(frozen=True)
class SuiteSize:
    """How much of each part runs."""

    clients: int
    load_seconds: float
    kill_rounds: int
    load_max_requests: int


SIZES = {
    "ci": SuiteSize(clients=8, load_seconds=8.0, kill_rounds=3, load_max_requests=6),
    "full": SuiteSize(clients=32, load_seconds=60.0, kill_rounds=50, load_max_requests=24),
}


def run_suite(models: dict[str, Path], size: SuiteSize, work: Path | None = None) -> dict[str, Any]:
    """Run every part on fresh data folders under ``work``; returns the figures (JSON-able)."""
    work = Path(work or tempfile.mkdtemp(prefix="uqseg-reliability-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    figures: dict[str, Any] = {"size": size.__dict__, "machine": machine()}
    server = start_server(work / "bad", models)
    try:
        figures["bad_inputs"] = run_bad_inputs(server).to_dict()
    finally:
        server.stop()
    limits = ["--max-requests", str(size.load_max_requests), "--max-queued-predictions", "4"]
    server = start_server(work / "load", models, extra_args=limits)
    try:
        figures["load"] = run_load(server, size.clients, size.load_seconds).to_dict()
        figures["load"]["server_limits"] = limits
    finally:
        server.stop()
    figures["kill9"] = run_kill9(work / "kill", models, size.kill_rounds).to_dict()
    figures["disk_full"] = run_disk_full(work / "disk", models).to_dict()
    figures["seconds"] = round(time.time() - started, 1)
    return figures


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def targets_met(figures: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, each True or False."""
    bad, load, kill, disk = figures["bad_inputs"], figures["load"], figures["kill9"], figures["disk_full"]
    return {
        ">= 200 distinct bad inputs, 0 answered 5xx, 0 hangs": bad["tried"] >= 200
        and bad["answered_5xx"] == 0
        and bad["hangs"] == 0,
        ">= 32 clients, 0 failures but 503-with-Retry-After, health < 1 s": load["clients"] >= 32
        and load["failures"] == 0
        and load["health_failures"] == 0
        and (load["health_max_s"] or 0) < 1.0,
        ">= 50 kill -9 rounds, 0 acknowledged corrections lost, every job finished": kill["rounds"] >= 50
        and kill["lost"] == 0
        and kill["jobs_not_finished"] == 0
        and kill["jobs_succeeded"] == kill["jobs_submitted"],
        "disk full: 0 acknowledged corrections lost, clear 507": not disk["skipped"]
        and disk["lost"] == 0
        and disk["other_errors"] == 0
        and disk["refused_507"] > 0,
    }


#: docs/reliability.md from this line on is written by hand (design notes); rewriting the figures keeps it
HAND_WRITTEN = "<!-- hand-written from here on: `uqseg reliability` keeps this part when it rewrites the file -->"


def keep_hand_written(body: str, previous: str) -> str:
    """``body`` (new figures) followed by the hand-written part of ``previous`` (from :data:`HAND_WRITTEN`)."""
    at = previous.find(HAND_WRITTEN)
    return body if at < 0 else body.rstrip("\n") + "\n\n" + previous[at:]


def markdown(figures: dict[str, Any], command: str) -> str:
    """docs/reliability.md body for ``figures`` (produced by ``command``)."""
    bad, load, kill, disk = figures["bad_inputs"], figures["load"], figures["kill9"], figures["disk_full"]
    m = figures["machine"]
    lines = [
        "# Reliability: bad inputs, load, crashes and a full disk",
        "",
        f"Produced by `{command}` ({figures['seconds']:.0f} s). Machine: {m['cpus']} CPU cores, load average "
        f"{m['load_average_at_start']} at the start (shared with other people's training runs and tests), "
        f"OMP_NUM_THREADS={m['omp_num_threads']}, Python {m['python']}; the server runs on the CPU.",
        "",
        "## Targets",
        "",
        *[f"- {'met' if ok else 'NOT met'}: {name}" for name, ok in targets_met(figures).items()],
        "",
        "## Bad inputs (generated corpus, `napari_uqseg/bench/reliability/corpus*.py`)",
        "",
        "| tried | 4xx with a message | 5xx | hangs (> 60 s) | accepted | server peak RSS growth |",
        "|---|---|---|---|---|---|",
        f"| {bad['tried']} | {bad['refused_4xx_with_message']} | {bad['answered_5xx']} | {bad['hangs']} | "
        f"{bad['accepted']} | {bad['peak_rss_growth_mib']} MiB |",
        "",
        f"## Load: {load['clients']} concurrent clients for {load['seconds']} s "
        f"(server {' '.join(load['server_limits'])})",
        "",
        "| served | 503 + Retry-After | failures | p50 | p99 | health checks | health max | peak RSS growth |",
        "|---|---|---|---|---|---|---|---|",
        f"| {load['served']} | {load['busy_503_with_retry_after']} | {load['failures']} | {load['latency_p50_s']} s | "
        f"{load['latency_p99_s']} s | {load['health_checks']} | {load['health_max_s']} s | "
        f"{load['peak_rss_growth_mib']} MiB |",
        "",
        f"## kill -9: {kill['rounds']} rounds during a stream of corrections and fine-tune jobs",
        "",
        "| acknowledged | found after | lost | answers lost in a crash, retried | jobs | succeeded | unfinished "
        "| most starts of one job |",
        "|---|---|---|---|---|---|---|---|",
        f"| {kill['acknowledged']} | {kill['found_after']} | {kill['lost']} | {kill['unanswered_then_retried']} | "
        f"{kill['jobs_submitted']} | {kill['jobs_succeeded']} | {kill['jobs_not_finished']} | "
        f"{kill['max_attempts_of_a_job']} |",
        "",
        "## Disk full (data folder on a small tmpfs, filled)",
        "",
    ]
    if disk["skipped"]:
        lines.append(f"Skipped: {disk['skipped']}.")
    else:
        lines += [
            "| requests | corrections acknowledged | 507 | other errors | found after | lost "
            "| stores again after freeing |",
            "|---|---|---|---|---|---|---|",
            f"| {disk['requests']} | {disk['acknowledged']} | {disk['refused_507']} | {disk['other_errors']} | "
            f"{disk['found_after']} | {disk['lost']} | {disk['stores_again_after_freeing']} |",
        ]
    problems = [p for part in (bad, load, kill, disk) for p in part.get("problems", [])]
    lines += ["", "## Problems seen", "", *([f"- {p}" for p in problems] or ["none"]), ""]
    lines += ["Raw figures:", "", "```json", json.dumps(figures, indent=1), "```", ""]
    return "\n".join(lines)
