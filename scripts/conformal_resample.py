"""How much one 26-case test split says about conformal coverage: the same figures over random re-splits.

Usage::

    python scripts/conformal_resample.py MODEL_DIR [MODEL_DIR ...] [--tta none flips] [--splits 2000]
        [--cache runs/conformal_cache] [--out runs/conformal_resample.json]

Needs the cache of ``scripts/results_conformal.py ... --calibration LIST`` for each model: the calibration and
test cases' records, both untouched by the model's training, so that any partition of their union into sets of
the same sizes is as valid a calibration/test split as the fixed one. For each random partition (the same one
for every model, as in the fixed split) fit the calibration on one part and score the 90 % intervals and the
outer masks on the other. Prints the mean, the 5-95 % range over partitions, the share of partitions whose
coverage lies in ``--band``, and the same for the coverage pooled over the models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from results_conformal import LEVELS, cache_name, load_record  # the sibling script's cache layout

from napari_uqseg.engine.data import pair_group
from napari_uqseg.engine.uq_calibration import fit_entry, score_entry


def _cached(model_dir: Path, cache: Path, tta: str) -> tuple[list, list]:
    folder = cache / cache_name(model_dir) / tta
    cal, test = (sorted((folder / part).glob("*.npz")) for part in ("calibration", "test"))
    if not cal or not test:
        raise SystemExit(f"{folder}: no calibration/test records; run results_conformal.py --calibration first")
    return [load_record(p) for p in cal], [load_record(p) for p in test]


def resample(
    models: list[Path], cache: Path, tta: str, splits: int, risk: float, seed: int = 0
) -> dict[str, np.ndarray]:
    """90 % coverage, covered pairs, pairs and outer-mask miss of each model over ``splits`` random partitions.

    Returns ``{model name: (splits, 4) array of (coverage, covered pairs, pairs, outer miss)}``.
    """
    pools = {m.name: _cached(m, cache, tta) for m in models}
    first_cal, first_test = next(iter(pools.values()))
    ids = [r.case_id for r in first_cal + first_test]
    if any([r.case_id for r in cal + test] != ids for cal, test in pools.values()):
        raise SystemExit("the models' cached calibration/test cases differ: resample models of one split")
    groups: dict[str, list[int]] = {}
    for i, case_id in enumerate(ids):  # scan pairs stay on one side, as in uqseg split
        groups.setdefault(pair_group(case_id), []).append(i)
    keys = sorted(groups)
    rng = np.random.default_rng(seed)
    out = {name: np.zeros((splits, 4)) for name in pools}
    levels = tuple(float(x) for x in LEVELS)
    for s in range(splits):
        order = [i for k in rng.permutation(len(keys)) for i in groups[keys[k]]]
        cut = len(first_cal)
        if cut < len(order) and pair_group(ids[order[cut]]) == pair_group(ids[order[cut - 1]]):
            cut += 1  # never part a scan pair: the calibration part takes the whole pair
        for name, (cal, test) in pools.items():
            cases = cal + test
            entry = fit_entry([cases[i] for i in order[:cut]], risk, levels)
            scored = score_entry(entry, [cases[i] for i in order[cut:]])
            out[name][s] = (scored["coverage"]["0.9"], scored["covered"]["0.9"], scored["n"], scored["outer_miss"])
    return out


def summary(results: dict[str, np.ndarray], band: tuple[float, float], pooled_band: tuple[float, float]) -> dict:
    """Mean, 5-95 % range and in-band share of each model's and the pooled 90 % coverage, and the outer miss."""

    def stats(values: np.ndarray, lo: float, hi: float) -> dict[str, float]:
        p5, p95 = np.percentile(values, [5, 95])
        return {
            "mean": float(values.mean()),
            "p5": float(p5),
            "p95": float(p95),
            "in_band": float(((values >= lo) & (values <= hi)).mean()),
        }

    rows = {name: {**stats(r[:, 0], *band), "outer_miss_mean": float(r[:, 3].mean())} for name, r in results.items()}
    stacked = np.stack(list(results.values()))
    pooled = stacked[:, :, 1].sum(axis=0) / stacked[:, :, 2].sum(axis=0)
    every = np.all((stacked[:, :, 0] >= band[0]) & (stacked[:, :, 0] <= band[1]), axis=0)
    both = every & (pooled >= pooled_band[0]) & (pooled <= pooled_band[1])
    rows["pooled"] = {
        **stats(pooled, *pooled_band),
        "every_model_in_band": float(every.mean()),
        "all": float(both.mean()),
    }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--tta", nargs="+", default=["none", "flips"])
    parser.add_argument("--splits", type=int, default=2000)
    parser.add_argument("--risk", type=float, default=0.05)
    parser.add_argument("--band", nargs=2, type=float, default=[0.82, 0.97], help="target range of each model")
    parser.add_argument("--pooled-band", nargs=2, type=float, default=[0.86, 0.94], help="target range pooled")
    parser.add_argument("--cache", default="runs/conformal_cache", type=Path)
    parser.add_argument("--out", default="runs/conformal_resample.json")
    args = parser.parse_args()
    report = {}
    print("| TTA | model | 90 % coverage: mean | 5-95 % of splits | splits in target | outer miss (mean) |")
    print("|---|---|---|---|---|---|")
    for tta in args.tta:
        rows = summary(resample(args.models, args.cache, tta, args.splits, args.risk), args.band, args.pooled_band)
        report[tta] = rows
        for name, r in rows.items():
            miss = f"{r['outer_miss_mean']:.1%}" if "outer_miss_mean" in r else "-"
            print(f"| {tta} | {name} | {r['mean']:.1%} | {r['p5']:.1%}-{r['p95']:.1%} | {r['in_band']:.0%} | {miss} |")
        pooled = rows["pooled"]
        print(
            f"{tta}: every model in its target in {pooled['every_model_in_band']:.0%} of the splits; "
            f"every model and the pool in {pooled['all']:.0%}",
            flush=True,
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"splits": args.splits, "results": report}, indent=1))


if __name__ == "__main__":
    main()
