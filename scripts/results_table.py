"""Build the markdown results table from `uqseg evaluate` report folders.

Usage: python scripts/results_table.py REPORT_DIR [REPORT_DIR ...] [--baseline deterministic]
Rows are named by their report folder; each report's model card gives its training seconds (summed over its
networks, across resumes), shown as a ratio to the baseline's (the same machine and dataset, measured by
`uqseg train`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_uqseg.engine.model_folder import read_card

COLUMNS = [
    ("Dice", "dice_mean", "{:.3f}"),
    ("ECE %", "ece_mean", "{:.2f}"),
    ("ECE pooled %", "ece_pooled", "{:.2f}"),
    ("Brier", "brier_pooled", "{:.4f}"),
    ("NLL", "nll_pooled", "{:.4f}"),
    ("err AUROC", "auroc_pooled", "{:.3f}"),
    ("AURC", "aurc_pooled", "{:.4f}"),
    ("recall@10%", "review_recall_mean", "{:.3f}"),
    ("case Spearman", "case_spearman", "{:.2f}"),
]


#: EVALUATION.md's quality targets: (figure, report key, "min" or "max" is good, every method's bound, the best's)
TARGETS = [
    ("Dice", "dice_mean", "min", 0.86, 0.89),
    ("ECE % (after `uqseg calibrate`)", "ece_mean", "max", 0.015, 0.008),
    ("error AUROC", "auroc_pooled", "min", 0.945, 0.96),
    ("review recall@10%", "review_recall_mean", "min", 0.6, None),
    ("case Spearman", "case_spearman", "min", 0.5, None),
]


def target_lines(rows: list[tuple[str, dict]]) -> list[str]:
    """One line per EVALUATION.md target: met or not, with the methods that miss it and the best value."""
    lines = []
    for label, key, good, every, best in TARGETS:
        values = {m: agg[key] for m, agg in rows if agg.get(key) is not None}
        if not values:
            continue
        ok = (lambda v, bound: v >= bound) if good == "min" else (lambda v, bound: v <= bound)
        scale = 100 if key.startswith("ece") else 1
        missed = [f"{m} {v * scale:.3g}" for m, v in values.items() if not ok(v, every)]
        top = max(values.items(), key=lambda kv: kv[1] if good == "min" else -kv[1])
        text = f"- {label}: every method {'>=' if good == 'min' else '<='} {every * scale:g}: "
        text += "**met**" if not missed else "not met (" + ", ".join(missed) + ")"
        if best is not None:
            verdict = "**met**" if ok(top[1], best) else "not met"
            text += f"; the best {'>=' if good == 'min' else '<='} {best * scale:g}: {verdict}"
        lines.append(text + f" (best: {top[0]} {top[1] * scale:.3g})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--baseline", default="deterministic")
    args = parser.parse_args()
    rows = []
    for folder in args.reports:
        report = json.loads((Path(folder) / "report.json").read_text())
        model_dir = (
            report["model"]["dir"] if isinstance(report.get("model"), dict) and "dir" in report["model"] else None
        )
        card = read_card(model_dir) if model_dir else None
        method = Path(folder).name  # the model's name in the results (a method, or a variant of one)
        history = card.training.get("history", {}) if card else {}
        seconds = _summed(history, "seconds")  # the card's top-level seconds count only the last resumed stretch
        seconds = float("nan") if seconds is None else seconds
        iterations = int(_summed(history, "iterations") or 0)
        rows.append((method, report["aggregate"], seconds, iterations, card))
    base = next((s for m, _, s, _, _ in rows if m == args.baseline), float("nan"))
    header = "| method | " + " | ".join(c[0] for c in COLUMNS) + " | train time (x det.) | steps |"
    print(header)
    print("|" + "---|" * (len(COLUMNS) + 3))
    for method, agg, seconds, iterations, _ in rows:
        values = []
        for _, key, fmt in COLUMNS:
            value = agg.get(key)
            if value is None:
                values.append("n/a")
                continue
            values.append(fmt.format(value * 100 if key.startswith("ece") else value))
        print(f"| {method} | " + " | ".join(values) + f" | {seconds / base:.2f} | {iterations} |")
    print("\nEVALUATION.md targets (the ECE target applies to calibrated models):")
    print("\n".join(target_lines([(m, agg) for m, agg, _, _, _ in rows])))
    for method, _, _, _, card in rows:
        extra = {k: v for k, v in (card.extra if card else {}).items() if isinstance(v, int | float | str)}
        if extra:
            print(f"\n{method}: " + ", ".join(f"{k} = {v}" for k, v in extra.items()))


def _summed(history: dict, key: str) -> float | None:
    """``key`` (``iterations``, ``seconds``) summed over every network the method trained, ensemble members
    included, each network's figure being its run's total across resumes; None when the history records none."""
    if isinstance(history.get(key), int | float):
        return float(history[key])
    parts = [p for p in (_summed(v, key) for v in history.values() if isinstance(v, dict)) if p is not None]
    return float(sum(parts)) if parts else None


if __name__ == "__main__":
    main()
