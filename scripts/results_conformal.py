"""Conformal volume intervals and outer/inner masks of trained models, with and without TTA: the results table.

Usage::

    python scripts/results_conformal.py MODEL_DIR [MODEL_DIR ...] --test runs/hippo_split/test.txt \
        [--shift noise:3] [--tta none flips] [--risk 0.05] [--cache runs/conformal_cache] [--out runs/conformal.json] \
        [--calibration runs/hippo_split_cal/calibration.txt]

For each model folder (rows are named by the folder) and TTA mode: predict the validation cases its training
held out (model.json ``val_cases``; or the ``--calibration`` list, cases the training never saw), fit the
conformal calibration on them and store it in the folder
(``uq_calibration.json``, as ``uqseg conformal`` does), then score it on the test cases and on their
shifted copies. Per-case predictions are cached (``--cache``), so an interrupted run resumes. Prints the
markdown tables of docs/results.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from napari_uqseg.core.shifts import case_seed, parse_shift
from napari_uqseg.engine.data import read_case_list
from napari_uqseg.engine.model_folder import load_model, read_card
from napari_uqseg.engine.tta import tta_key, with_tta
from napari_uqseg.engine.uq_calibration import (
    CaseUncertainty,
    case_uncertainty,
    fit_entry,
    labelled_cases,
    save_entry,
    score_entry,
)

LEVELS = ("0.8", "0.9", "0.95")


def save_record(record: CaseUncertainty, path: Path) -> None:
    data = asdict(record)
    scales = data.pop("scales")
    np.savez(path, **{k: np.asarray(v) for k, v in data.items()}, **{f"scale_{k}": v for k, v in scales.items()})


def load_record(path: Path) -> CaseUncertainty:
    z = np.load(path)
    scales = {k.removeprefix("scale_"): z[k] for k in z.files if k.startswith("scale_")}
    fields = {k: z[k] for k in z.files if not k.startswith("scale_")}
    return CaseUncertainty(
        case_id=str(fields["case_id"]),
        true_voxels=fields["true_voxels"],
        predicted_voxels=fields["predicted_voxels"],
        scales=scales,
        outer_miss=fields["outer_miss"],
        inner_excess=fields["inner_excess"],
        size=fields["size"],
        voxel_ml=float(fields["voxel_ml"]),
    )


def records(method, data_dir, case_ids, shift, cache: Path, log, shard=(0, 1)) -> list[CaseUncertainty]:
    """Cached :func:`case_uncertainty` of each case (shifted as ``uqseg evaluate --shift`` would); with a shard
    ``(k, n)`` only every n-th case from the k-th is computed (and only cached ones are returned)."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for i, case_id in enumerate(case_ids):
        path = cache / f"{case_id}.npz"
        if not path.is_file() and i % shard[1] != shard[0]:
            continue
        if not path.is_file():
            ((_, image, label),) = labelled_cases(data_dir, [case_id], shift, seed=0)
            torch.manual_seed(case_seed(0, case_id))
            save_record(case_uncertainty(method, case_id, image, label, case_seed(0, case_id)), path)
            log(f"  {cache.name} {case_id}")
        out.append(load_record(path))
    return out


def binomial_band(n: int, p: float, mass: float = 0.95) -> tuple[float, float]:
    """Central ``mass`` range of Binomial(n, p) / n: where an exactly calibrated coverage falls."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    cdf = np.cumsum(pmf)
    lo = int(np.searchsorted(cdf, (1 - mass) / 2))
    hi = int(np.searchsorted(cdf, 1 - (1 - mass) / 2))
    return lo / n, hi / n


def relative_volume_error(cases: list[CaseUncertainty]) -> float:
    """Mean ``|V_pred - V_true| / V_true`` over the (case, foreground class) pairs of ``cases``."""
    errors = [
        abs(float(p) - float(t)) / max(float(t), 1.0)
        for r in cases
        for t, p in zip(r.true_voxels[1:], r.predicted_voxels[1:], strict=True)
    ]
    return float(np.mean(errors)) if errors else float("nan")


def cache_name(model_dir: Path) -> str:
    """The model's cache folder: its name and a hash of its absolute path (two folders named alike never share)."""
    return f"{model_dir.name}-{hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:8]}"


def run_model(model_dir: Path, args, log) -> dict:
    card = read_card(model_dir)
    data_dir = args.data or card.training["data"]["dir"]
    val = read_case_list(args.calibration) if args.calibration else card.training["data"]["val_cases"]
    test = read_case_list(args.test)
    method = load_model(model_dir, "cpu")
    results = {}
    for mode in args.tta:
        wrapped = with_tta(method, mode)
        key = tta_key(wrapped)
        cache = Path(args.cache) / cache_name(model_dir) / key
        start = time.perf_counter()
        cal_cache = cache / ("calibration" if args.calibration else "val")
        cal = records(wrapped, data_dir, val, None, cal_cache, log, args.shard)
        if args.shard != (0, 1):  # a shard only fills the cache; a run without --shard makes the table
            records(wrapped, data_dir, test, None, cache / "test", log, args.shard)
            for shift in args.shift:
                records(wrapped, data_dir, test, parse_shift(shift), cache / shift.replace(":", "_"), log, args.shard)
            continue
        entry = fit_entry(cal, args.risk, tuple(float(x) for x in LEVELS))
        save_entry(model_dir, key, entry)
        tested = records(wrapped, data_dir, test, None, cache / "test", log)
        row = {"test": {**score_entry(entry, tested), "relative_volume_error": relative_volume_error(tested)}}
        for shift in args.shift:
            shifted = records(wrapped, data_dir, test, parse_shift(shift), cache / shift.replace(":", "_"), log)
            row[shift] = {**score_entry(entry, shifted), "relative_volume_error": relative_volume_error(shifted)}
        row["calibration_cases"] = len(cal)
        row["calibration_relative_volume_error"] = relative_volume_error(cal)
        row["seconds"] = time.perf_counter() - start
        row["samples"] = wrapped.n_samples()
        results[key] = row
    return results


def markdown(results: dict, risk: float) -> str:
    lines = [
        "| method | TTA | cases | samples | cover 80 % | cover 90 % | cover 95 % | width 80/90/95 % (mL) "
        f"| outer miss (target {risk:.0%}) | outer extra volume | inner wrong inclusion "
        "| mean rel. volume error: calibration / these cases |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, by_tta in results.items():
        for key, row in by_tta.items():
            for split, s in row.items():
                if not isinstance(s, dict):
                    continue
                cover = " | ".join(f"{s['coverage'][lv]:.0%} ({s['covered'][lv]}/{s['n']})" for lv in LEVELS)
                widths = "/".join(f"{s['width_ml'][lv]:.3f}" for lv in LEVELS)
                errors = f"{row.get('calibration_relative_volume_error', np.nan):.3f} / "
                errors += f"{s.get('relative_volume_error', np.nan):.3f}"
                lines.append(
                    f"| {name} | {key} | {split} | {row['samples']} | {cover} | {widths} | {s['outer_miss']:.1%} "
                    f"| +{s['outer_extra']:.0%} | {s['inner_excess']:.1%} | {errors} |"
                )
    return "\n".join(lines)


def pooled_summary(results: dict, tta: str = "none", split: str = "test") -> str:
    """Pooled 90 % coverage over every model, and the binomial bands of one model and of the pool."""
    rows = [r[tta][split] for r in results.values() if tta in r and split in r[tta]]
    if not rows:
        return ""
    covered = sum(r["covered"]["0.9"] for r in rows)
    n = sum(r["n"] for r in rows)
    one = binomial_band(rows[0]["n"], 0.9)
    pool = binomial_band(n, 0.9)
    return (
        f"Pooled over {len(rows)} models ({tta}, {split}): 90 % intervals cover {covered}/{n} = {covered / n:.1%}. "
        f"An exactly calibrated 90 % interval covers {one[0]:.0%}-{one[1]:.0%} of {rows[0]['n']} (case, class) "
        f"pairs in 95 % of test sets, {pool[0]:.1%}-{pool[1]:.1%} of {n} (binomial)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--test", help="test case list")
    parser.add_argument("--tables", nargs="+", help="only print the tables of these --out files, merged")
    parser.add_argument("--data", help="dataset (default: each model's)")
    parser.add_argument("--shift", nargs="*", default=["noise:3"])
    parser.add_argument("--tta", nargs="+", default=["none", "flips"])
    parser.add_argument("--risk", type=float, default=0.05)
    parser.add_argument("--calibration", help="case list to calibrate on (default: each model's validation cases)")
    parser.add_argument("--cache", default="runs/conformal_cache")
    parser.add_argument("--out", default="runs/conformal_results.json")
    parser.add_argument(
        "--shard", default="0/1", help="K/N: only fill the cache with every N-th case from the K-th (parallel runs)"
    )
    args = parser.parse_args()
    args.shard = tuple(int(x) for x in args.shard.split("/"))
    torch.set_num_threads(1)
    if args.tables:
        merged: dict = {}
        for path in args.tables:
            for name, by_tta in json.loads(Path(path).read_text()).items():
                merged.setdefault(name, {}).update(by_tta)
        print_tables(merged, args.risk, sorted({k for r in merged.values() for k in r}), args.shift)
        return
    if not args.test:
        parser.error("--test is required unless --tables")
    results = {}
    for model_dir in args.models:
        if not (model_dir / "model.json").is_file():
            print(f"skipped {model_dir}: no model.json yet", flush=True)
            continue
        results[model_dir.name] = run_model(model_dir, args, lambda m: print(m, flush=True))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    print_tables(results, args.risk, args.tta, args.shift)


def print_tables(results: dict, risk: float, modes: list[str], shifts: list[str]) -> None:
    print(markdown(results, risk))
    for tta in modes:
        for split in ["test", *shifts]:
            if line := pooled_summary(results, tta, split):
                print(line)


if __name__ == "__main__":
    main()
