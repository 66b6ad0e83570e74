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
        "|" + "---|" * 7,
    ]
    for r in runs:
        ph, w = r["remote_phases"], r["wire"]
        out.append(
            f"| {'x'.join(map(str, r['shape']))} ({'x'.join(map(str, r['patch']))}) | {r['local_s']:.2f} | "
            f"{r['remote_s']:.2f} | **{r['ratio']:.3f}** | {ph['inference']:.2f} / {ph['encode']:.2f} | "
            f"{ph['upload']:.2f} / {ph['download']:.2f} | {w['sent_bytes'] / 2**20:.1f} MB / "
            f"{w['received_bytes'] / 2**20:.1f} MB |"
        )
    return out + [_roi_line(r) for r in runs if "roi" in r]


def _stack_rows(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "\n| deep ensemble (3 members), windows per batch | stacked s | loop s | stacked / loop |",
        "|" + "---|" * 4,
    ]
    return out + [f"| {r['batch']} | {r['stacked_s']:.2f} | {r['loop_s']:.2f} | **{r['ratio']:.3f}** |" for r in rows]


def _train_precision_line(run: dict[str, Any]) -> str:
    shape = "x".join(map(str, run["patch"]))
    return (
        f"\nTraining step (U-Net (16, 32, 64, 128), {run['batch']} patches of {shape}, Adam): float32 "
        f"{run['float32_s']:.2f} s, bfloat16 mixed precision {run['bfloat16_s']:.2f} s: **{run['speedup']:.2f}x** "
        f"(`auto` resolves to {run['bfloat16']} on this CPU)."
    )


def _roi_line(run: dict[str, Any]) -> str:
    """Bytes received for one prediction's outputs: whole, region of interest, a viewer's box."""
    roi, mb = run["roi"], 2**20
    chosen = (
        f"{roi['roi_bytes'] / mb:.2f} MB (box {roi['roi_box']})"
        if roi["roi_box"]
        else f"the whole image ({roi['roi_bytes'] / mb:.2f} MB: the foreground and review regions span it)"
    )
    return (
        f"\nOutputs of one {'x'.join(map(str, run['shape']))} prediction received whole: "
        f"{roi['whole_bytes'] / mb:.2f} MB; as the region of interest (margin {roi['margin']}): {chosen}; "
        f"cropped to a viewer's box (the ellipsoid grown by {roi['margin']}, {roi['viewer_box_fraction']:.0%} of the "
        f"voxels): {roi['viewer_box_bytes'] / mb:.2f} MB."
    )


#: issue 20's Done-when bounds
FLOOR_MAX, SPEEDUP_MIN, DICE_CHANGE_MAX, BYTES_PER_VOXEL_MAX = 1.1, 1.5, 0.002, 40.0
REMOTE_MAX_SMALL, REMOTE_MAX_CT, CT_VOXELS = 1.1, 1.2, 512 * 512 * 300


def perf_targets(results: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """``(target, value, limit, met)`` for every issue-20 bound the results measure."""
    out = []
    if "floor" in results:
        out.append(("predict_volume / plain MONAI", results["floor"]["ratio"], FLOOR_MAX, None))
    if "precision_check" in results:
        check = results["precision_check"]
        out.append(("bfloat16 speed-up over float32", check["speedup"], SPEEDUP_MIN, "min"))
        out.append(("Dice change, bfloat16 vs float32", check["dice_change"], DICE_CHANGE_MAX, None))
    for r in results.get("remote", []):
        big = r["shape"][0] * r["shape"][1] * r["shape"][2] >= CT_VOXELS
        out.append(
            (
                f"remote / local {'x'.join(map(str, r['shape']))}",
                r["ratio"],
                REMOTE_MAX_CT if big else REMOTE_MAX_SMALL,
                None,
            )
        )
    for p in results.get("size", []):
        if p["voxels"] >= CT_VOXELS and "error" not in p:
            out.append(
                (
                    f"peak bytes / voxel {'x'.join(map(str, p['shape']))}",
                    p["bytes_per_voxel"],
                    BYTES_PER_VOXEL_MAX,
                    None,
                )
            )
    return [
        (name, value, limit, value >= limit if kind == "min" else value <= limit) for name, value, limit, kind in out
    ]


def perf_section(results: dict[str, Any], figures: list[Path], markdown: str | Path) -> str:
    """Markdown for one perf run: command, machine state, one table per measurement, the figures."""
    out = _machine(results)
    if "precision_check" in results:
        out += _precision_rows(results["precision_check"])
    if "floor" in results:
        out += _floor_rows(results["floor"])
    if "remote" in results:
        out += _remote_rows(results["remote"])
    if "stack" in results:
        out += _stack_rows(results["stack"])
    if "train_precision" in results:
        out.append(_train_precision_line(results["train_precision"]))
    if "size" in results:
        out += _size_rows(results["size"])
    if "samples" in results:
        out += _samples_rows(results["samples"])
    if "clients" in results:
        out += _clients_rows(results["clients"])
    targets = perf_targets(results)
    if targets:
        out += ["\n| target | value | limit | met |", "|" + "---|" * 4]
        out += [f"| {n} | {v:.4g} | {lim:g} | {'yes' if ok else 'no'} |" for n, v, lim, ok in targets]
    base = Path(markdown).resolve().parent
    for figure in figures:
        out.append(f"\n![{figure.stem}]({os.path.relpath(Path(figure).resolve(), base)})")
    return "\n".join(out) + "\n"
