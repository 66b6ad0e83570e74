"""The ``docs/benchmarks.md`` section of ``uqseg bench --curves/--floor/--precision-check`` (markdown text)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _machine(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    before, after = results.get("load_before", ()), results.get("load_after", ())
    load = f"load average {before[0]:.1f} before, {after[0]:.1f} after" if before and after else ""
    return [
        f"\n## {m['date']}: cost curves and floors, {m['cpu']}, {m['cores']} cores\n",
        f"- command: `{results['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores ({results['threads']} torch threads), {m['ram_gb']} GB RAM, "
        f"{m['os']}; torch {m['torch']}, MONAI {m['monai']}; {load}",
    ]


def _size_rows(points: list[dict[str, Any]]) -> list[str]:
    out = [
        "\n| volume | voxels (M) | seconds | s / Mvoxel | peak RSS MB | bytes / voxel |",
        "|---|---|---|---|---|---|",
    ]
    for p in points:
        shape = "x".join(map(str, p["shape"]))
        if "error" in p:
            out.append(f"| {shape} | {p['voxels'] / 1e6:.2f} | error: {p['error'][:80]} | | | |")
            continue
        out.append(
            f"| {shape} | {p['voxels'] / 1e6:.2f} | {p['seconds']:.1f} | {p['seconds_per_mvoxel']:.2f} | "
            f"{p['rss_peak_mb']:.0f} | {p['bytes_per_voxel']:.1f} |"
        )
    return out


def _samples_rows(points: list[dict[str, Any]]) -> list[str]:
    out = ["\n| MC-Dropout samples | seconds | peak RSS MB |", "|---|---|---|"]
    for p in points:
        if "error" in p:
            out.append(f"| {p['samples']} | error: {p['error'][:80]} | |")
        else:
            out.append(f"| {p['samples']} | {p['seconds']:.1f} | {p['rss_peak_mb']:.0f} |")
    return out


def _clients_rows(points: list[dict[str, Any]]) -> list[str]:
    out = [
        "\n| clients | requests (done) | predictions / s | median latency s | max latency s | bytes received |",
        "|---|---|---|---|---|---|",
    ]
    for p in points:
        out.append(
            f"| {p['clients']} | {p['requests']} ({p['completed']}) | {p['throughput_per_s']:.2f} | "
            f"{p['latency_median_s']:.2f} | {p['latency_max_s']:.2f} | {p['received_bytes_median']:.0f} |"
        )
    return out


def _floor_rows(floor: dict[str, Any]) -> list[str]:
    shape = "x".join(map(str, floor["shape"]))
    return [
        f"\nFloor ({shape}, {floor['precision']}, {floor['threads']} threads): `predict_volume` "
        f"{floor['ours_s']:.1f} s "
        f"against plain MONAI `sliding_window_inference` + argmax {floor['monai_s']:.1f} s: ratio "
        f"**{floor['ratio']:.3f}** (all: ours {[round(x, 1) for x in floor['ours_all_s']]}, MONAI "
        f"{[round(x, 1) for x in floor['monai_all_s']]}); identical labels on {100 * floor['mask_agreement']:.3f} % "
        "of the voxels."
    ]


def _precision_rows(check: dict[str, Any]) -> list[str]:
    s, dice = check["seconds"], check["dice_vs_truth"]
    agree = ", ".join(f"class {c}: {d:.4f}" for c, d in check["mask_agreement_dice"].items())
    maps = ", ".join(f"{k} {v['max']:.3f} ({v['p99']:.4f})" for k, v in check["map_diff"].items())
    return [
        f"\nPrecision ({check['method']} starter model, MNI scan {check['shape']}): float32 {s['float32']:.1f} s, "
        f"bfloat16 {s['bfloat16']:.1f} s: **{check['speedup']:.2f}x**. Dice against the tissue labels: float32 "
        f"{dice['float32']}, bfloat16 {dice['bfloat16']} (largest change **{check['dice_change']:.4f}**); the two "
        f"masks agree with Dice {agree}; probabilities differ by at most {check['probability_diff']['max']:.3f} "
        f"(99th percentile {check['probability_diff']['p99']:.4f}); maps, max (p99): {maps}."
    ]


def _remote_rows(runs: list[dict[str, Any]]) -> list[str]:
    out = [
        "\n| volume (window) | local s | remote s | remote / local | server inference / encode s | "
        "upload / download s | bytes sent / received |",
        "|---|" * 7,
    ]
    for r in runs:
        ph, w = r["remote_phases"], r["wire"]
        out.append(
            f"| {'x'.join(map(str, r['shape']))} ({'x'.join(map(str, r['patch']))}) | {r['local_s']:.2f} | "
            f"{r['remote_s']:.2f} | **{r['ratio']:.3f}** | {ph['inference']:.2f} / {ph['encode']:.2f} | "
            f"{ph['upload']:.2f} / {ph['download']:.2f} | {w['sent_bytes'] / 2**20:.1f} MB / "
            f"{w['received_bytes'] / 2**20:.1f} MB |"
        )
    return out


def perf_section(results: dict[str, Any], figures: list[Path], markdown: str | Path) -> str:
    """Markdown for one perf run: command, machine state, one table per measurement, the figures."""
    out = _machine(results)
    if "precision_check" in results:
        out += _precision_rows(results["precision_check"])
    if "floor" in results:
        out += _floor_rows(results["floor"])
    if "remote" in results:
        out += _remote_rows(results["remote"])
    if "size" in results:
        out += _size_rows(results["size"])
    if "samples" in results:
        out += _samples_rows(results["samples"])
    if "clients" in results:
        out += _clients_rows(results["clients"])
    base = Path(markdown).resolve().parent
    for figure in figures:
        out.append(f"\n![{figure.stem}]({os.path.relpath(Path(figure).resolve(), base)})")
    return "\n".join(out) + "\n"
