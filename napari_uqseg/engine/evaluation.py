"""``uqseg evaluate``: predict every case of a dataset, score quality and uncertainty, write a report folder.

Metric definitions are those of EVALUATION.md and the research notes (section 4); the functions live in
``core.metrics``, ``core.calibration``, ``core.ranking_metrics`` and ``core.review``. Voxel figures are
computed in the ROI (default: the ground-truth foreground bounding box), per case and pooled over the
voxels of all cases; Dice on the whole volume. The folder layout is described in ``core.report``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_uqseg.core import calibration, metrics, ranking_metrics
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import atomic_write_bytes, load_image, load_label, save_volume
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.report import (
    CASE_FILE,
    CASES_DIR,
    FORMAT_VERSION,
    REPORT_FILE,
    CaseRow,
    clean_json,
    error_map,
    subsample_curve,
    worst_region,
)
from napari_uqseg.core.review import case_score, review_recall
from napari_uqseg.core.shifts import DESCRIPTIONS, apply_shift, case_seed
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.data import case_pairs, num_classes_of
from napari_uqseg.engine.device import resolve_device
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.report_plots import write_report_plots
from napari_uqseg.engine.store import load_model, read_card

#: maps bounded by log C (nats); UEO divides them by log C, other maps by their maximum in the case ROI
ENTROPY_MAPS = ("entropy", "expected_entropy", "mutual_information")

#: what each aggregate figure means, stored in report.json next to the numbers
DEFINITIONS = {
    "dice": "mean over foreground classes per case (whole volume), then mean over cases",
    "ece": "top-label ECE, equal-width bins, in the ROI; *_mean over cases, *_pooled over all ROI voxels",
    "ece_whole": "the same ECE over every voxel of the volume",
    "brier": "sum over classes of squared error, mean over ROI voxels (range [0, 2])",
    "nll": "mean -log p(true class) over ROI voxels",
    "auroc/aupr": "uncertainty as a score for 'voxel misclassified' in the ROI; aupr chance level = error_rate",
    "aurc/e_aurc": "area under the voxel risk-coverage curve / minus the oracle's",
    "ueo": "best-threshold Dice of {normalised uncertainty > t} with the error map (Jungo & Reyes 2019)",
    "review_recall": "share of ROI error voxels inside the top uncertain regions covering the budget of ROI voxels",
    "case_score": "mean uncertainty over the predicted foreground dilated by 2 voxels (core.review.case_score)",
    "case_spearman": "Spearman(case_score, 1 - Dice) over cases",
    "case_failure_auroc": "AUROC of case_score for Dice < failure_dice",
}


@dataclass
class EvalSettings:
    """Options of an evaluation.

    Attributes
    ----------
    map_name : str
        Uncertainty map used as the score (must be one the model produces).
    roi : str
        ``core.metrics.ROI_KINDS``: ``gt_bbox`` (default), ``union_bbox`` or ``whole``.
    ece_bins : int
        Equal-width ECE bins.
    review_budget : float
        Share of ROI voxels a reader reviews for ``review_recall``.
    failure_dice : float
        Cases below this Dice count as failures for ``case_failure_auroc``.
    keep_probabilities : bool
        Also write ``probabilities.nii.gz`` per case (C float32 volumes: large).
    seed : int
        Seed of the shifts and of stochastic methods (per case, see ``core.shifts.case_seed``).
    """

    map_name: str = "entropy"
    roi: str = "gt_bbox"
    ece_bins: int = 100
    review_budget: float = 0.10
    failure_dice: float = 0.8
    keep_probabilities: bool = False
    seed: int = 0


def _check_report_dir(report_dir: Path, overwrite: bool) -> None:
    if report_dir.suffix.lower() == ".json" or report_dir.name.endswith((".nii", ".nii.gz")):
        raise InputError(
            "--report", f"{report_dir} looks like a file; the report is a folder (report.json is written inside it)"
        )
    if report_dir.exists() and not report_dir.is_dir():
        raise InputError("--report", f"{report_dir} is a file; the report is a folder")
    if report_dir.exists() and any(report_dir.iterdir()) and not overwrite:
        raise InputError("--report", f"{report_dir} already exists and is not empty; pass --overwrite to replace it")


def _select_cases(data_dir: Path, case_ids: list[str] | None) -> list[tuple[str, Path, Path]]:
    pairs = case_pairs(data_dir)
    if case_ids is None:
        return pairs
    known = {c for c, _, _ in pairs}
    missing = [c for c in case_ids if c not in known]
    if missing:
        raise InputError("--cases", f"case(s) not in the dataset {data_dir}: {missing[:5]}")
    wanted = set(case_ids)
    return [p for p in pairs if p[0] in wanted]


def _normalised(u: np.ndarray, map_name: str, num_classes: int) -> np.ndarray:
    """Uncertainty in [0, 1] for UEO: entropies / log C, other maps / their maximum in the ROI."""
    scale = np.log(num_classes) if map_name in ENTROPY_MAPS else float(u.max(initial=0.0))
    return np.clip(u / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(u)


def _optimal_risk(coverage: np.ndarray, n: int, n_errors: int) -> np.ndarray:
    """Oracle selective risk ``max(0, k - (N - N_e)) / k`` at coverage ``k / N``."""
    k = np.maximum(np.round(np.asarray(coverage) * n), 1.0)
    return np.maximum(0.0, k - (n - n_errors)) / k


def score_case(
    prob: np.ndarray,
    pred: np.ndarray,
    target: np.ndarray,
    maps: dict[str, np.ndarray],
    settings: EvalSettings,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Every per-case figure of one prediction.

    Parameters
    ----------
    prob : np.ndarray
        ``(C, *S)`` mean class probabilities.
    pred, target : np.ndarray
        ``(*S)`` predicted and true labels.
    maps : dict
        Map name -> ``(*S)`` uncertainty.
    settings : EvalSettings

    Returns
    -------
    figures : dict
        ``CaseRow`` figures (``dice``, ``ece`` ...).
    curves : dict
        ``reliability`` bins (numpy), ``risk_coverage`` and ``dice_after_removal`` (for case.json).
    pooled : dict
        ROI voxels to pool over cases: ``errors``, ``pred``, ``target`` ``(N,)``, ``maps`` {name: ``(N,)``},
        the ROI and whole-volume reliability bins, ``n_roi``, ``case_scores`` {map: float}.
    """
    num_classes = prob.shape[0]
    roi = metrics.roi_mask(target, settings.roi, pred)
    prob_roi, target_roi, pred_roi = prob[:, roi], target[roi], pred[roi]
    conf, correct = calibration.top_label(prob_roi, target_roi)
    errors = ~correct
    bins = calibration.reliability_bins(conf, correct, settings.ece_bins)
    conf_all, correct_all = calibration.top_label(prob, target)
    bins_whole = calibration.reliability_bins(conf_all, correct_all, settings.ece_bins)
    u_full = maps[settings.map_name]
    u = u_full[roi].astype(np.float64)
    dice_per_class = metrics.dice_per_class(pred, target, num_classes)
    coverage, risk = ranking_metrics.risk_coverage(u, errors)
    figures = {
        "dice_per_class": dice_per_class.tolist(),
        "dice": float(dice_per_class.mean()),
        "case_score": case_score(u_full, pred),
        "ece": calibration.ece_from_bins(bins),
        "ece_whole": calibration.ece_from_bins(bins_whole),
        "brier": metrics.brier(prob_roi, target_roi),
        "nll": metrics.nll(prob_roi, target_roi),
        "auroc": ranking_metrics.auroc(u, errors),
        "aupr": ranking_metrics.average_precision(u, errors),
        "aurc": ranking_metrics.aurc(u, errors),
        "e_aurc": ranking_metrics.e_aurc(u, errors),
        "ueo": ranking_metrics.ueo(_normalised(u, settings.map_name, num_classes), errors)[0],
        "review_recall": review_recall(u_full, pred != target, roi, settings.review_budget),
        "error_rate": float(errors.mean()) if errors.size else float("nan"),
    }
    fractions = np.arange(0.0, 1.0, 0.05)
    curves = {
        "reliability": bins,
        "risk_coverage": subsample_curve(coverage, risk),
        "dice_after_removal": {
            "fractions": fractions,
            "dice": ranking_metrics.dice_after_removal(u, pred_roi, target_roi, num_classes, fractions),
        },
    }
    pooled = {
        "errors": errors,
        "pred": pred_roi.astype(np.uint8),
        "target": target_roi.astype(np.uint8),
        "maps": {name: m[roi].astype(np.float32) for name, m in maps.items()},
        "case_scores": {name: case_score(m, pred) for name, m in maps.items()},
        "bins": bins,
        "bins_whole": bins_whole,
        "n_roi": int(roi.sum()),
    }
    return figures, curves, pooled


def _bins_json(bins: dict[str, np.ndarray]) -> dict[str, Any]:
    return clean_json({k: bins[k] for k in ("counts", "mean_confidence", "accuracy")})


def _mean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def aggregate(rows: list[CaseRow], pooled: list[dict[str, Any]], settings: EvalSettings) -> tuple[dict, dict, dict]:
    """Aggregate figures, per-map pooled error detection and the pooled curves of a whole evaluation.

    Returns
    -------
    aggregate : dict
        ``<figure>_mean`` over cases, ``<figure>_pooled`` over voxels, case-level figures, counts.
    by_map : dict
        Map name -> pooled ``auroc``, ``aupr``, ``aurc``, ``e_aurc``, ``case_spearman``.
    curves : dict
        Pooled ``reliability`` bins, ``risk_coverage`` (+ ``risk_coverage_oracle``) and ``dice_after_removal``.
    """
    errors = np.concatenate([p["errors"] for p in pooled])
    pred = np.concatenate([p["pred"] for p in pooled])
    target = np.concatenate([p["target"] for p in pooled])
    u = np.concatenate([p["maps"][settings.map_name] for p in pooled]).astype(np.float64)
    weights = np.array([p["n_roi"] for p in pooled], dtype=np.float64)
    dice = np.array([r.dice for r in rows])
    scores = np.array([r.case_score for r in rows])
    bins = calibration.merge_reliability_bins([p["bins"] for p in pooled])
    agg: dict[str, Any] = {"n_cases": len(rows), "n_failures": int(np.sum(dice < settings.failure_dice))}
    agg["dice_mean"] = _mean(dice.tolist())
    agg["dice_std"] = float(np.std(dice)) if len(rows) else float("nan")
    agg["dice_per_class_mean"] = np.mean([r.dice_per_class for r in rows], axis=0).tolist()
    for name in ("ece", "ece_whole", "brier", "nll", "auroc", "aupr", "aurc", "e_aurc", "ueo", "review_recall"):
        agg[f"{name}_mean"] = _mean([getattr(r, name) for r in rows])
    agg["ece_pooled"] = calibration.ece_from_bins(bins)
    agg["ece_whole_pooled"] = calibration.ece_from_bins(
        calibration.merge_reliability_bins([p["bins_whole"] for p in pooled])
    )
    agg["brier_pooled"] = float(np.average([r.brier for r in rows], weights=weights))
    agg["nll_pooled"] = float(np.average([r.nll for r in rows], weights=weights))
    agg["error_rate_pooled"] = float(errors.mean())
    agg["auroc_pooled"] = ranking_metrics.auroc(u, errors)
    agg["aupr_pooled"] = ranking_metrics.average_precision(u, errors)
    agg["aurc_pooled"] = ranking_metrics.aurc(u, errors)
    agg["e_aurc_pooled"] = ranking_metrics.e_aurc(u, errors)
    agg["case_spearman"] = ranking_metrics.spearman(scores, 1.0 - dice)
    agg["case_failure_auroc"] = ranking_metrics.auroc(scores, dice < settings.failure_dice)
    by_map = {}
    for name in pooled[0]["maps"]:
        um = np.concatenate([p["maps"][name] for p in pooled]).astype(np.float64)
        cs = np.array([p["case_scores"][name] for p in pooled])
        by_map[name] = {
            "auroc": ranking_metrics.auroc(um, errors),
            "aupr": ranking_metrics.average_precision(um, errors),
            "aurc": ranking_metrics.aurc(um, errors),
            "e_aurc": ranking_metrics.e_aurc(um, errors),
            "case_spearman": ranking_metrics.spearman(cs, 1.0 - dice),
        }
    num_classes = len(rows[0].dice_per_class) + 1
    fractions = np.arange(0.0, 1.0, 0.05)
    coverage, risk = ranking_metrics.risk_coverage(u, errors)
    curve = subsample_curve(coverage, risk)
    curves = {
        "reliability": _bins_json(bins),
        "risk_coverage": curve,
        "risk_coverage_oracle": {
            "x": curve["x"],
            "y": clean_json(_optimal_risk(np.array(curve["x"]), u.size, int(errors.sum()))),
        },
        "dice_after_removal": {
            "fractions": fractions.tolist(),
            "dice": ranking_metrics.dice_after_removal(u, pred, target, num_classes, fractions).tolist(),
            "oracle": ranking_metrics.dice_after_removal(
                errors.astype(np.float64), pred, target, num_classes, fractions
            ).tolist(),
        },
    }
    agg["dice_after_removal_area"] = float(np.mean(curves["dice_after_removal"]["dice"]))
    return clean_json(agg), clean_json(by_map), curves


def _model_summary(model_dir: Path) -> dict[str, Any]:
    card = read_card(model_dir)
    return {
        "dir": str(model_dir.resolve()),
        "method": card.method,
        "options": card.options,
        "labels": card.labels,
        "created": card.created,
        "patch_size": card.patch_size,
        "normalisation": card.normalisation,
        "training_data": card.training.get("data", {}),
        "training_seconds": card.training.get("seconds"),
    }


def evaluate(
    model_dir: str | Path,
    data_dir: str | Path,
    report_dir: str | Path,
    case_ids: list[str] | None = None,
    shift: tuple[str, int] | None = None,
    settings: EvalSettings | None = None,
    device: str = "auto",
    progress: Progress = no_progress,
    command: str = "",
    cases_file: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Evaluate a trained model on (a subset of) a labelled dataset and write the report folder.

    Parameters
    ----------
    model_dir, data_dir : path
        Model folder (``uqseg train``) and MSD-layout dataset.
    report_dir : path
        Report *folder*; built in a staging folder next to it and renamed at the end, so a failed
        evaluation leaves no half report.
    case_ids : list of str, optional
        Cases to evaluate (default all).
    shift : (name, severity), optional
        Corrupt every image with ``core.shifts.apply_shift`` first (seeded per case).
    settings : EvalSettings, optional
    command : str
        The command line, recorded in ``report.json``.

    Returns
    -------
    Path
        The report folder.
    """
    settings = settings or EvalSettings()
    model_dir, data_dir, report_dir = Path(model_dir), Path(data_dir), Path(report_dir)
    _check_report_dir(report_dir, overwrite)
    model = _model_summary(model_dir)
    num_classes, labels = num_classes_of(data_dir)
    selected = _select_cases(data_dir, case_ids)
    method = load_model(model_dir, str(resolve_device(device)))
    if method.net_config.num_classes != num_classes:
        raise InputError(
            str(data_dir), f"has {num_classes} classes but the model predicts {method.net_config.num_classes}"
        )
    if settings.map_name not in method.maps:
        raise InputError(
            "--map", f"{settings.map_name!r} is not a map of {method.name}; it gives {', '.join(method.maps)}"
        )
    trained_on = set(model["training_data"].get("train_cases", [])) | set(model["training_data"].get("val_cases", []))
    overlap = sorted(trained_on & {c for c, _, _ in selected})
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = report_dir.with_name(f".{report_dir.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    started = time.perf_counter()
    try:
        rows, pooled = [], []
        for i, (case_id, image_path, label_path) in enumerate(selected):
            progress(i, len(selected), f"case {case_id}")
            rel = f"{CASES_DIR}/{case_id}"
            row, pooled_case = _evaluate_case(
                method, case_id, image_path, label_path, num_classes, shift, settings, staging / rel
            )
            rows.append(row)
            pooled.append(pooled_case)
        progress(len(selected), len(selected), "aggregating")
        agg, by_map, curves = aggregate(rows, pooled, settings)
        report = {
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command,
            "seconds": time.perf_counter() - started,
            "model": model,
            "dataset": {
                "dir": str(data_dir.resolve()),
                "cases_file": str(Path(cases_file).resolve()) if cases_file else None,
                "case_ids": [r.case_id for r in rows],
                "overlap_with_training": overlap,
                "shift": None
                if shift is None
                else {
                    "name": shift[0],
                    "severity": shift[1],
                    "seed": settings.seed,
                    "description": DESCRIPTIONS[shift[0]],
                },
            },
            "map": settings.map_name,
            "num_classes": num_classes,
            "labels": labels,
            "settings": asdict(settings),
            "definitions": DEFINITIONS,
            "aggregate": agg,
            "by_map": by_map,
            "curves": curves,
            "cases": [r.to_dict() for r in rows],
        }
        (staging / "table.txt").write_text(format_table(report))
        write_report_plots(report, staging)
        atomic_write_bytes(staging / REPORT_FILE, json.dumps(clean_json(report), indent=1).encode())
        _swap_in(staging, report_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report_dir


def _swap_in(staging: Path, report_dir: Path) -> None:
    """Replace ``report_dir`` by the finished staging folder (old content removed only after the rename)."""
    if report_dir.exists():
        old = report_dir.with_name(f".{report_dir.name}.old-{os.getpid()}")
        os.replace(report_dir, old)
        os.replace(staging, report_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, report_dir)


def _evaluate_case(
    method: Any,
    case_id: str,
    image_path: Path,
    label_path: Path,
    num_classes: int,
    shift: tuple[str, int] | None,
    settings: EvalSettings,
    case_dir: Path,
) -> tuple[CaseRow, dict[str, Any]]:
    """Predict one case, write its files into ``case_dir`` and return its row and pooled voxels."""
    image = load_image(image_path)  # raw intensities: the model normalises, the explorer shows these
    label = load_label(label_path, image, num_classes)
    files: dict[str, Any] = {"prediction": "prediction.nii.gz", "error": "error.nii.gz", "maps": {}}
    seed = case_seed(settings.seed, case_id)
    if shift is not None:
        image = Volume(apply_shift(image.array, shift[0], shift[1], seed, image.spacing), image.affine)
        files["image"] = "image.nii.gz"  # the corrupted image the model saw, for the explorer
        save_volume(image, case_dir / files["image"])
    torch.manual_seed(seed)  # stochastic methods draw the same samples for a case in every run
    prediction = predict_volume(method, image)
    prob = prediction.probabilities.array
    pred = prediction.mask.array
    maps = {name: v.array for name, v in prediction.maps.items()}
    figures, curves, pooled = score_case(prob, pred, label.array, maps, settings)
    errors = error_map(pred, label.array)
    save_volume(prediction.mask, case_dir / files["prediction"])
    save_volume(Volume(errors, image.affine), case_dir / files["error"])
    for name, volume in prediction.maps.items():
        files["maps"][name] = f"{name}.nii.gz"
        save_volume(volume, case_dir / files["maps"][name])
    if settings.keep_probabilities:
        files["probabilities"] = "probabilities.nii.gz"
        save_volume(
            Volume(np.moveaxis(prob, 0, -1), image.affine), case_dir / files["probabilities"]
        )  # NIfTI: (I, J, K, C)
    row = CaseRow(
        case_id=case_id,
        image=str(Path(image_path).resolve()),
        label=str(Path(label_path).resolve()),
        dir=f"{CASES_DIR}/{case_id}",
        files=files,
        **figures,
    )
    detail = {
        **row.to_dict(),
        "affine": image.affine.tolist(),
        "shape": list(pred.shape),
        "map": settings.map_name,
        "reliability": _bins_json(curves["reliability"]),
        "risk_coverage": curves["risk_coverage"],
        "dice_after_removal": clean_json(curves["dice_after_removal"]),
        "worst_region": worst_region(errors),
    }
    atomic_write_bytes(case_dir / CASE_FILE, json.dumps(clean_json(detail), indent=1).encode())
    return row, pooled


def format_table(report: dict[str, Any]) -> str:
    """The per-case and aggregate table printed by ``uqseg evaluate`` and saved as ``table.txt``."""
    columns = ("dice", "case_score", "ece", "brier", "nll", "auroc", "aupr", "e_aurc", "ueo", "review_recall")
    head = f"{'case':24}" + "".join(f"{c:>14}" for c in columns)
    lines = [f"# {report.get('command', '')}", f"# model {report['model']['method']}, map {report['map']}", head]
    for case in report["cases"]:
        values = "".join(f"{_fmt(case.get(c)):>14}" for c in columns)
        lines.append(f"{case['case_id'][:24]:24}{values}")
    lines.append("")
    lines.append("aggregate")
    for key, value in report["aggregate"].items():
        lines.append(f"  {key:28} {_fmt(value) if not isinstance(value, list) else ', '.join(_fmt(v) for v in value)}")
    lines.append("by map (pooled voxels)")
    for name, figures in report["by_map"].items():
        lines.append(f"  {name:28} " + "  ".join(f"{k} {_fmt(v)}" for k, v in figures.items()))
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "nan"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4f}"
