"""Does a small regressor over the case scores rank failures better than the best single score? (docs/loop.md)

Fits ridge regression of ``1 - Dice`` on the standardised case scores of a model's validation cases (the
per-model JSON that ``uqseg loop methods`` writes beside methods.json) and reports Spearman(prediction,
1 - Dice) on those validation cases (in-sample) and on the test cases.

Usage: python scripts/case_score_regression.py OUT/<method>.json [...] [--ridge 0 1 10]
"""

from __future__ import annotations

import argparse

import numpy as np

from napari_uqseg.core.json_files import read_json
from napari_uqseg.core.ranking_metrics import spearman


def _features(cases: dict, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[case["scores"][n] for n in names] for case in cases.values()], dtype=np.float64)
    y = np.array([1.0 - case["dice"] for case in cases.values()], dtype=np.float64)
    return x, y


def fit_and_score(per_case: dict, ridge: float) -> dict[str, float]:
    """Ridge weights fitted on ``per_case["val"]``; Spearman on val (in-sample) and test."""
    names = sorted(next(iter(per_case["val"].values()))["scores"])
    x_val, y_val = _features(per_case["val"], names)
    x_test, y_test = _features(per_case["test"], names)
    mean, std = x_val.mean(axis=0), x_val.std(axis=0) + 1e-12
    design = np.c_[np.ones(len(y_val)), (x_val - mean) / std]
    penalty = ridge * np.diag([0.0] + [1.0] * len(names))  # the intercept is not shrunk
    weights = np.linalg.solve(design.T @ design + penalty, design.T @ y_val)
    predicted_test = np.c_[np.ones(len(y_test)), (x_test - mean) / std] @ weights
    return {"val": spearman(design @ weights, y_val), "test": spearman(predicted_test, y_test), "features": names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("per_model", nargs="+", help="<method>.json written by uqseg loop methods")
    parser.add_argument("--ridge", type=float, nargs="+", default=[0.0, 1.0, 10.0])
    args = parser.parse_args()
    print("| model | ridge | val Spearman (in-sample) | test Spearman |\n|---|---|---|---|")
    for path in args.per_model:
        per_case = read_json(path)
        for ridge in args.ridge:
            r = fit_and_score(per_case, ridge)
            model = f"{per_case['method']} ({len(r['features'])} scores)"
            print(f"| {model} | {ridge:g} | {r['val']:.2f} | {r['test']:.2f} |")


if __name__ == "__main__":
    main()
