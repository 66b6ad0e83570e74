"""Conformal calibration of a trained model's volume intervals and outer/inner masks on held-out cases.

Per case, one prediction (optionally with TTA) is reduced to what calibration and evaluation need
(:class:`CaseUncertainty`); :func:`fit_entry` turns the calibration cases' records into one entry of
``uq_calibration.json`` (format in ``core.calibrated_uncertainty``), which ``engine.model_folder.load_model``
attaches to the model so that every prediction reports calibrated volumes and mask thresholds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_uqseg.core.calibrated_uncertainty import CALIBRATION_FILE, CALIBRATION_FORMAT
from napari_uqseg.core.conformal_masks import THRESHOLDS, fit_mask_thresholds, inner_excess_curve, outer_miss_curve
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import atomic_write_bytes
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.volume import Volume
from napari_uqseg.core.volume_intervals import (
    DEFAULT_LEVELS,
    MIN_SCALE_VOXELS,
    class_voxel_counts,
    fit_interval_quantiles,
)
from napari_uqseg.core.volume_intervals import interval_scores as volume_scores
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import read_uq_calibration
from napari_uqseg.engine.tta import tta_key


@dataclass
class CaseUncertainty:
    """One case's prediction as calibration sees it (classes ``0..C-1``; index 0 is background).

    Attributes
    ----------
    true_voxels, predicted_voxels : np.ndarray
        ``(C,)`` voxel counts of the label and of the predicted mask.
    scales : dict
        Source -> ``(C,)`` volume scales in voxels (``core.volume_intervals.volume_scales``).
    outer_miss, inner_excess, size : np.ndarray
        ``(C, T)`` over ``THRESHOLDS``: share of the structure missed by ``{p_c >= t}``, its wrong
        inclusions over the structure's volume, and its voxel count.
    voxel_ml : float
    """

    case_id: str
    true_voxels: np.ndarray
    predicted_voxels: np.ndarray
    scales: dict[str, np.ndarray]
    outer_miss: np.ndarray
    inner_excess: np.ndarray
    size: np.ndarray
    voxel_ml: float


def case_uncertainty(method: Any, case_id: str, image: Volume, label: np.ndarray, seed: int = 0) -> CaseUncertainty:
    """Predict ``image`` (raw intensities) with ``method`` (plain or TTA-wrapped) and reduce it."""
    torch.manual_seed(seed)
    prediction = predict_volume(method, image, output_dtype="float32")  # metrics: float32 probabilities
    prob = prediction.probabilities.array
    num_classes = prob.shape[0]
    volumes = prediction.info["volumes"]
    flat = [np.sort(prob[c].ravel()) for c in range(num_classes)]
    return CaseUncertainty(
        case_id=case_id,
        true_voxels=class_voxel_counts(label, num_classes),
        predicted_voxels=class_voxel_counts(prediction.mask.array, num_classes),
        scales={name: np.asarray(v) for name, v in volumes["scales_voxels"].items()},
        outer_miss=np.stack([outer_miss_curve(prob[c], label == c) for c in range(num_classes)]),
        inner_excess=np.stack([inner_excess_curve(prob[c], label == c) for c in range(num_classes)]),
        size=np.stack([f.size - np.searchsorted(f, THRESHOLDS, side="left") for f in flat]).astype(np.float64),
        voxel_ml=float(volumes["voxel_ml"]),
    )


#: the samples' scale is kept unless its calibrated intervals are this many times wider than the Bernoulli ones
SAMPLES_WIDTH_LIMIT = 2.0


def mean_interval_width(
    quantiles: dict[str, dict[str, float]], records: list[CaseUncertainty], source: str, level: float
) -> float:
    """Mean width in voxels of one source's calibrated ``level`` intervals over ``records`` and classes
    (``quantiles``: class -> level key -> quantile)."""
    widths = [
        2.0 * by_level[f"{level:g}"] * max(float(r.scales[source][int(c)]), MIN_SCALE_VOXELS)
        for c, by_level in quantiles.items()
        for r in records
    ]
    return float(np.mean(widths)) if widths else float("inf")


def choose_volume_source(
    volume: dict[str, dict[str, dict[str, float]]], records: list[CaseUncertainty], level: float = 0.9
) -> str:
    """``samples`` where the prediction has samples, unless its scale is degenerate; else ``bernoulli``.

    The samples' spread grows on cases the model finds harder, so its intervals keep their coverage better under
    a shift (docs/results.md); but the spread of samples that hardly disagree (the checkpoints of one SGD run) is
    a tiny, noisy scale that a large calibrated quantile turns into very wide intervals. ``samples`` is kept
    unless its mean calibrated ``level`` interval over ``records`` is more than :data:`SAMPLES_WIDTH_LIMIT` times
    the Bernoulli one (``volume``: source -> class -> level key -> quantile, as :func:`fit_entry` fits it).
    """
    if "samples" not in volume:
        return "bernoulli"
    samples = mean_interval_width(volume["samples"], records, "samples", level)
    bernoulli = mean_interval_width(volume["bernoulli"], records, "bernoulli", level)
    return "bernoulli" if samples > SAMPLES_WIDTH_LIMIT * bernoulli else "samples"


def fit_entry(
    records: list[CaseUncertainty], risk: float = 0.05, levels: tuple[float, ...] = DEFAULT_LEVELS
) -> dict[str, Any]:
    """One calibration entry from calibration cases' records (every foreground class, every source)."""
    if len(records) < 2:
        raise InputError("cases", f"conformal calibration needs at least 2 held-out cases, got {len(records)}")
    num_classes = len(records[0].true_voxels)
    true = np.stack([r.true_voxels for r in records])
    pred = np.stack([r.predicted_voxels for r in records])
    sources = set.intersection(*(set(r.scales) for r in records))
    volume = {
        source: {
            str(c): fit_interval_quantiles(
                volume_scores(true[:, c], pred[:, c], np.stack([r.scales[source][c] for r in records])), levels
            )
            for c in range(1, num_classes)
        }
        for source in sorted(sources)
    }
    masks = {
        str(c): fit_mask_thresholds(
            np.stack([r.outer_miss[c] for r in records]), np.stack([r.inner_excess[c] for r in records]), risk
        )
        for c in range(1, num_classes)
    }
    return {
        "cases": [r.case_id for r in records],
        "volume_source": choose_volume_source(volume, records, 0.9 if 0.9 in levels else max(levels)),
        "volume": volume,
        "masks": {"risk": risk, "classes": masks},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def calibration_records(
    method: Any, cases: list[tuple[str, Volume, np.ndarray]], seed: int = 0, progress: Progress = no_progress
) -> list[CaseUncertainty]:
    """:func:`case_uncertainty` of every ``(case id, raw image, label)``."""
    records = []
    for i, (case_id, image, label) in enumerate(cases):
        progress(i, len(cases), f"case {case_id}")
        records.append(case_uncertainty(method, case_id, image, label, seed))
    progress(len(cases), len(cases), "fitting")
    return records


def save_entry(model_dir: str | Path, tta: str, entry: dict[str, Any]) -> Path:
    """Add (or replace) the entry of TTA mode ``tta`` in the model folder's calibration file, atomically."""
    path = Path(model_dir) / CALIBRATION_FILE
    calibration = read_uq_calibration(model_dir) or {"format": CALIBRATION_FORMAT, "entries": {}}
    calibration["entries"][tta] = entry
    atomic_write_bytes(path, json.dumps(calibration, indent=1).encode())
    return path


def calibrate_method(
    method: Any,
    model_dir: str | Path,
    cases: list[tuple[str, Volume, np.ndarray]],
    risk: float = 0.05,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Fit and store the entry of ``method``'s TTA mode on ``cases``; returns the entry."""
    entry = fit_entry(calibration_records(method, cases, progress=progress), risk)
    save_entry(model_dir, tta_key(method), entry)
    return entry


def labelled_cases(
    data_dir: str | Path, case_ids: list[str], shift: tuple[str, int] | None = None, seed: int = 0
) -> list[tuple[str, Volume, np.ndarray]]:
    """``(case id, raw image, label)`` of ``case_ids``, optionally corrupted as ``uqseg evaluate --shift`` does."""
    from napari_uqseg.core.nifti_io import load_image, load_label
    from napari_uqseg.core.shifts import apply_shift, case_seed
    from napari_uqseg.engine.data import case_pairs, num_classes_of

    num_classes, _ = num_classes_of(data_dir)
    pairs = {c: (image, label) for c, image, label in case_pairs(data_dir)}
    missing = sorted(set(case_ids) - set(pairs))
    if missing:
        raise InputError(str(data_dir), f"has no case(s) {missing[:5]}")
    out = []
    for case_id in case_ids:
        image = load_image(pairs[case_id][0])
        label = load_label(pairs[case_id][1], image, num_classes).array
        if shift is not None:
            shifted = apply_shift(image.array, shift[0], shift[1], case_seed(seed, case_id), image.spacing)
            image = Volume(shifted, image.affine)
        out.append((case_id, image, np.asarray(label)))
    return out


def calibrate_model(
    model_dir: str | Path,
    data_dir: str | Path | None = None,
    cases: list[str] | None = None,
    tta_modes: tuple[str, ...] = ("none",),
    risk: float = 0.05,
    device: str = "auto",
    progress: Progress = no_progress,
) -> dict[str, dict[str, Any]]:
    """Calibrate volume intervals and outer/inner masks of a trained model, for each TTA mode.

    By default on the validation cases its training held out, from the dataset it was trained on (both in
    its card). The entries are written into ``model_dir/uq_calibration.json``; weights and card are not
    changed. Returns the entries by TTA key.
    """
    from napari_uqseg.engine.device import resolve_device
    from napari_uqseg.engine.model_folder import load_model, validation_split
    from napari_uqseg.engine.tta import with_tta

    _, data_dir, cases = validation_split(model_dir, data_dir, cases)
    held_out = labelled_cases(data_dir, list(cases))
    method = load_model(model_dir, str(resolve_device(device)))
    entries = {}
    for mode in tta_modes:
        wrapped = with_tta(method, mode)
        entries[tta_key(wrapped)] = calibrate_method(wrapped, model_dir, held_out, risk, progress)
    return entries


def score_entry(entry: dict[str, Any], records: list[CaseUncertainty]) -> dict[str, Any]:
    """How a calibration entry does on other (test) cases: interval coverage and width, realised mask risks.

    Every (case, foreground class) pair counts once. Returns ``coverage`` and ``width_ml`` (mean) per level,
    ``outer_miss`` (mean share of the structure outside the outer mask), ``outer_extra`` (mean outer-mask
    voxels beyond the predicted mask, over the predicted mask's), ``inner_excess`` (mean wrong inclusions
    of the inner mask over the structure), ``n`` pairs and ``cases``.
    """
    source = entry["volume_source"]
    grid = THRESHOLDS
    covered: dict[str, list[bool]] = {}
    widths: dict[str, list[float]] = {}
    miss, extra, excess = [], [], []
    for r in records:
        for c, quantiles in entry["volume"][source].items():
            k = int(c)
            half_scale = max(float(r.scales[source][k]), 1.0)
            for level, q in quantiles.items():
                lo = max(0.0, r.predicted_voxels[k] - q * half_scale)
                hi = r.predicted_voxels[k] + q * half_scale
                covered.setdefault(level, []).append(bool(lo <= r.true_voxels[k] <= hi))
                widths.setdefault(level, []).append((hi - lo) * r.voxel_ml)
            masks = entry["masks"]["classes"][c]
            if masks["outer"] is not None:
                t = int(np.searchsorted(grid, masks["outer"]))
                miss.append(r.outer_miss[k, t])
                extra.append((r.size[k, t] - r.predicted_voxels[k]) / max(r.predicted_voxels[k], 1))
            if masks["inner"] is not None:
                excess.append(r.inner_excess[k, int(np.searchsorted(grid, masks["inner"]))])
    mean = lambda values: float(np.mean(values)) if values else float("nan")  # noqa: E731
    return {
        "coverage": {level: mean(v) for level, v in covered.items()},
        "width_ml": {level: mean(v) for level, v in widths.items()},
        "outer_miss": mean(miss),
        "outer_extra": mean(extra),
        "inner_excess": mean(excess),
        "n": len(next(iter(covered.values()), [])),
        "cases": len(records),
        "covered": {level: int(np.sum(v)) for level, v in covered.items()},
    }
