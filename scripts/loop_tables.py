"""Markdown tables for docs/loop.md from `uqseg loop methods` (methods.json) and `uqseg loop run` (loop.json).

Usage: python scripts/loop_tables.py [--methods OUT/methods.json ...] [--loop OUT/loop.json ...]
       [--merged FILE --png FILE]

Several loop.json files (arms run as separate processes, the first one with the baseline) are merged; arm names
get the file's fine-tune iterations appended when they differ from the first file's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _f(value, digits: int = 3) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _first5(figures: dict) -> str:
    """``errors (voxels reviewed)`` in the first 5 regions for each order."""
    orders = ("uncertainty", "random", "oracle")
    text = " / ".join(f"{figures[f'first5_{o}']:.0f} ({figures.get(f'first5_voxels_{o}', 0):.0f})" for o in orders)
    return text + f"; queue in its best order {figures.get('first5_queue_oracle', float('nan')):.0f}"


def methods_tables(summaries: list[dict]) -> str:
    lines = [
        "| method | test Dice | site Dice | drop | largest region (test / site) | errors in first 5 regions: "
        "uncertainty / random / oracle (voxels reviewed), test | same, site |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        t, st = s["test"], s["site_test"]
        lines.append(
            f"| {s['method']} | {_f(t['dice'])} | {_f(st['dice'])} | {_f(s['site_dice_drop'])} | "
            f"{t['largest_region']} / {st['largest_region']} | "
            f"{_first5(t)} | {_first5(st)} |"
        )
    lines += [
        "",
        "| method | score | val Spearman | val AUROC selection shift | test Spearman | test AUROC site vs in-dist. "
        "| default |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        for name, val in s["val_scores"].items():
            test = s["test_scores"].get(name, {})
            mark = "**default**" if name == s["default_score"] else ""
            lines.append(
                f"| {s['method']} | {name} | {_f(val['spearman'])} | {_f(val.get('site_auroc'))} | "
                f"{_f(test.get('spearman'))} | {_f(test.get('site_auroc'))} | {mark} |"
            )
    return "\n".join(lines)


def loop_table(loop: dict) -> str:
    base = loop["baseline"]
    lines = [
        "| arm | corrected cases | reviewed ROI voxels | errors fixed / errors | site unseen Dice | "
        "in-dist. Dice | recommendation |",
        "|---|---|---|---|---|---|---|",
        f"| (v1) | 0 | - | - | {_f(base['site_unseen'], 4)} | {_f(base['in_distribution'], 4)} | - |",
    ]
    for arm, rounds in loop["arms"].items():
        for r in rounds:
            reads = r["reads"]
            share = sum(x["reviewed_voxels"] for x in reads) / max(1, sum(x["roi_voxels"] for x in reads))
            fixed = f"{sum(x['errors_fixed'] for x in reads)} / {sum(x['errors'] for x in reads)}"
            verdict = (r["job"].get("recommendation") or {}).get("reason", "")
            lines.append(
                f"| {arm} | {r['corrected_cases']} | {100 * share:.1f} % | {fixed} | "
                f"{_f(r['dice']['site_unseen'], 4)} | {_f(r['dice']['in_distribution'], 4)} | {verdict} |"
            )
    return "\n".join(lines)


#: how a loss mode reads in an arm's name
LOSS_LABELS = {"reviewed": "reviewed-voxel", "confident": "confident-voxel"}


def merge_loops(loops: list[dict]) -> dict:
    """One loop result from several runs on the same split (the first holds the baseline)."""
    merged = {**loops[0], "arms": {}}
    first_iterations = loops[0]["config"]["finetune"].get("iterations")
    for loop in loops:
        iterations = loop["config"]["finetune"].get("iterations")
        if loop["corrected"] != merged["corrected"] or loop["unseen"] != merged["unseen"]:
            raise SystemExit("loop runs on different splits cannot be merged")
        for arm, rounds in loop["arms"].items():
            name = arm if iterations == first_iterations else f"{arm} ({iterations} it.)"
            masks = [r["job"].get("loss_mask") or {} for r in rounds]
            if any(m.get("partial") for m in masks):  # partial corrections trained on part of their label
                name += f" [{LOSS_LABELS.get(masks[0].get('mode'), 'masked')} loss]"
            merged["arms"][name] = rounds
    return merged


def whole_case_shares(loop: dict) -> str:
    """Each arm's last-round gain on the unseen site cases as a share of the whole-case arm's gain (same steps)."""
    base = loop["baseline"]["site_unseen"]
    gains = {arm: rounds[-1]["dice"]["site_unseen"] - base for arm, rounds in loop["arms"].items()}
    lines = []
    for arm, gain in gains.items():
        whole = next((g for a, g in gains.items() if a.startswith("whole") and _steps(a) == _steps(arm)), None)
        if whole and not arm.startswith("whole"):
            lines.append(f"{arm}: {gain:+.4f} = {100 * gain / whole:.0f} % of the whole-case gain ({whole:+.4f})")
    return "\n".join(lines)


def _steps(arm: str) -> str:
    return arm.split("(")[1].split(")")[0] if "(" in arm else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", nargs="*", help="methods.json files, one table row per model in them")
    parser.add_argument("--loop", nargs="*")
    parser.add_argument("--merged", help="write the merged loop.json here")
    parser.add_argument("--png", help="write the Dice-vs-corrected-cases PNG here")
    args = parser.parse_args()
    if args.methods:
        print(methods_tables([s for p in args.methods for s in json.loads(Path(p).read_text())]))
    if args.loop:
        loop = merge_loops([json.loads(Path(p).read_text()) for p in args.loop])
        print(loop_table(loop))
        print(whole_case_shares(loop))
        if args.merged:
            Path(args.merged).write_text(json.dumps(loop, indent=1))
        if args.png:
            from napari_uqseg.core.loop_plots import loop_dice_png

            loop_dice_png(loop, args.png)


if __name__ == "__main__":
    main()
