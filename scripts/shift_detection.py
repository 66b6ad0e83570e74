"""Shift detection: AUROC of the case score, in-distribution cases against the same cases corrupted.

Usage: python scripts/shift_detection.py --in-dist REPORT_DIR --shifted REPORT_DIR [REPORT_DIR ...]

Each report is a ``uqseg evaluate`` folder of one model on the same case list, the shifted ones made with
``--shift NAME:SEVERITY``. The case score of a shifted case is the positive, that of its clean twin the
negative (docs/evaluation.md: target >= 0.8 at medium severity). Prints one markdown row per shifted report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_uqseg.core.ranking_metrics import auroc
from napari_uqseg.core.report import Report, read_report


def shift_auroc(clean: Report, shifted: Report) -> tuple[float, float]:
    """AUROC of the case score for shifted vs clean cases, and the shifted cases' mean Dice."""
    clean_scores = {row.case_id: row.case_score for row in clean.cases}
    rows = [row for row in shifted.cases if row.case_id in clean_scores]
    if not rows:
        raise SystemExit("the reports share no case")
    scores = np.array([clean_scores[row.case_id] for row in rows] + [row.case_score for row in rows])
    positives = np.r_[np.zeros(len(rows), bool), np.ones(len(rows), bool)]
    return auroc(scores, positives), float(np.mean([row.dice for row in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-dist", required=True)
    parser.add_argument("--shifted", nargs="+", required=True)
    args = parser.parse_args()
    clean = read_report(args.in_dist)
    method = Path(args.in_dist).name  # the model's name in the results (a method, or a variant of one)
    print("| method | shift | severity | Dice clean | Dice shifted | case-score AUROC |")
    print("|---|---|---|---|---|---|")
    for folder in args.shifted:
        shifted = read_report(folder)
        if shifted.meta["model"]["dir"] != clean.meta["model"]["dir"]:
            raise SystemExit(f"{folder}: another model than {args.in_dist}")
        value, dice = shift_auroc(clean, shifted)
        shift = shifted.meta["dataset"]["shift"] or {"name": "none", "severity": 0}
        print(
            f"| {method} | {shift['name']} | {shift['severity']} | {clean.meta['aggregate']['dice_mean']:.3f} "
            f"| {dice:.3f} | {value:.2f} |"
        )


if __name__ == "__main__":
    main()
