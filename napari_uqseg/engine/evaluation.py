"""``uqseg evaluate``: predict every case of a dataset, score quality and uncertainty, write a report folder.

The figures are computed by ``core.evaluation_scores`` (targets: docs/evaluation.md); the folder layout is
described in ``core.report``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.evaluation_scores import DEFINITIONS, EvalSettings, aggregate, bins_json, score_case
from napari_uqseg.core.json_values import clean_json
from napari_uqseg.core.nifti_io import atomic_write_bytes, load_image, load_label, save_volume
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.report import (
    CASE_FILE,
    CASES_DIR,
    FORMAT_VERSION,
    REPORT_FILE,
    CaseRow,
    error_map,
    worst_region,
)
from napari_uqseg.core.report_plots import write_report_plots
from napari_uqseg.core.shifts import DESCRIPTIONS, apply_shift, case_seed
from napari_uqseg.core.volume import Volume
from napari_uqseg.core.volume_intervals import true_volumes
from napari_uqseg.engine.data import case_pairs, num_classes_of
from napari_uqseg.engine.device import resolve_device
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model, read_card
from napari_uqseg.engine.tta import with_tta


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
    method = _load_checked_model(model_dir, data_dir, num_classes, settings, device)
    trained_on = set(model["training_data"].get("train_cases", [])) | set(model["training_data"].get("val_cases", []))
    overlap = sorted(trained_on & {c for c, _, _ in selected})
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = report_dir.with_name(f".{report_dir.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    started = time.perf_counter()
    try:
        rows, pooled = _score_cases(method, selected, num_classes, shift, settings, staging, progress)
        progress(len(selected), len(selected), "aggregating")
        agg, by_map, curves = aggregate(rows, pooled, settings)
        report = {
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command,
            "seconds": time.perf_counter() - started,
            "model": model,
            "dataset": _dataset_entry(data_dir, cases_file, rows, overlap, shift, settings),
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


def _load_checked_model(model_dir: Path, data_dir: Path, num_classes: int, settings: EvalSettings, device: str):
    """The model (with the settings' TTA) on ``device``, refused if its classes or maps do not fit the evaluation."""
    method = with_tta(load_model(model_dir, str(resolve_device(device))), settings.tta)
    if method.net_config.num_classes != num_classes:
        raise InputError(
            str(data_dir), f"has {num_classes} classes but the model predicts {method.net_config.num_classes}"
        )
    if settings.map_name not in method.maps:
        raise InputError(
            "--map", f"{settings.map_name!r} is not a map of {method.name}; it gives {', '.join(method.maps)}"
        )
    return method


def _score_cases(
    method,
    selected: list[tuple[str, Path, Path]],
    num_classes: int,
    shift: tuple[str, int] | None,
    settings: EvalSettings,
    staging: Path,
    progress: Progress,
) -> tuple[list[CaseRow], list[dict]]:
    """Predict and score each selected case, writing its files under ``staging/cases/<id>``."""
    rows, pooled = [], []
    for i, (case_id, image_path, label_path) in enumerate(selected):
        progress(i, len(selected), f"case {case_id}")
        row, pooled_case = _evaluate_case(
            method, case_id, image_path, label_path, num_classes, shift, settings, staging / f"{CASES_DIR}/{case_id}"
        )
        rows.append(row)
        pooled.append(pooled_case)
    return rows, pooled


def _dataset_entry(
    data_dir: Path,
    cases_file: str | None,
    rows: list[CaseRow],
    overlap: list[str],
    shift: tuple[str, int] | None,
    settings: EvalSettings,
) -> dict[str, Any]:
    """The report's ``dataset`` section: where the cases came from, which ones, and the shift applied."""
    return {
        "dir": str(data_dir.resolve()),
        "cases_file": str(Path(cases_file).resolve()) if cases_file else None,
        "case_ids": [r.case_id for r in rows],
        "overlap_with_training": overlap,
        "shift": None
        if shift is None
        else {"name": shift[0], "severity": shift[1], "seed": settings.seed, "description": DESCRIPTIONS[shift[0]]},
    }


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
    prediction = predict_volume(method, image, output_dtype="float32")  # metrics: float32 probabilities
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
        "reliability": bins_json(curves["reliability"]),
        "risk_coverage": curves["risk_coverage"],
        "dice_after_removal": clean_json(curves["dice_after_removal"]),
        "worst_region": worst_region(errors),
        "volumes": {**prediction.info["volumes"], "true": true_volumes(label.array, prob.shape[0], image.affine)},
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
