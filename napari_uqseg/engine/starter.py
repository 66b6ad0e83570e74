"""The starter model's recipe, its held-back measurement and its human-readable model card.

``scripts/train_starter_model.py`` trains it; ``core.bundled_models`` says where it ships.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.core.demo_figure import DemoLayers, save_demo_figure
from napari_uqseg.core.nifti_io import atomic_write_bytes, load_image, load_label, save_volume
from napari_uqseg.core.predict_options import PredictOptions
from napari_uqseg.core.review_hits import heldout_figures
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import CARD_FILE, load_model, read_card
from napari_uqseg.engine.prediction_files import write_prediction

STARTER_METHOD = "mc_dropout"
#: small U-Net (about 0.35 M weights: 0.7 MB in float16), 48^3-voxel patches at 2 mm, one CPU thread
STARTER_CONFIG: dict[str, dict[str, Any]] = {
    "net": {"channels": [8, 16, 32, 64]},
    "train": {
        "patch_size": [48, 48, 48],
        "batch_size": 2,
        "iterations": 1200,
        "lr": 3e-3,
        "seed": 0,
        "stop_rule": "plateau",
        "val_every": 100,
        "patience": 4,
        "augment": "nnunet",
        "time_budget_s": 2100,
    },
    "method": {"rate": 0.2, "samples": 8},
}
#: the training set (``core.sample_data.brain_dataset``): deformed copies of the template, each with its own
#: noise level (also in the air around the head, so the network learns that noise is not tissue)
STARTER_DATA: dict[str, Any] = {"n_cases": 12, "noise": (0.01, 0.08)}
DATA_LICENCE = (
    "ICBM 2009a nonlinear symmetric MNI152 template and tissue maps (Fonov et al. 2009/2011), as shipped in "
    "nilearn's wheel; copyright McConnell Brain Imaging Centre, free use with the copyright notice kept "
    "(see the licence text distributed with the ICBM 2009 atlases)"
)


def score_heldout(
    model_dir: str | Path, image_path: str | Path, reference_path: str | Path, out_dir: str | Path, top: int = 5
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Predict a held-back scan, rank it along axial slices, and score errors against uncertainty.

    Writes the prediction files and ``review.json`` as ``uqseg predict`` and the viewers do (default
    :class:`~napari_uqseg.core.predict_options.PredictOptions`: mutual information for sampling methods, regions
    by their expected errors), axial slices, plus ``errors.nii.gz`` (prediction differs from the reference) and
    ``errors_vs_uncertainty.png`` into ``out_dir``. Returns the written paths and
    ``core.review_hits.heldout_figures``. The sampling methods' random draws are seeded (``torch.manual_seed(0)``),
    so a run gives the same figures as the model card's measurement on the same machine.
    """
    import torch

    image, reference = load_image(image_path), load_label(reference_path)
    options = PredictOptions(axis=2)  # axial slices, as the viewers show a RAS volume
    torch.manual_seed(0)
    prediction = predict_volume(load_model(model_dir), image, options.overlap, options.sw_batch_size)
    written = write_prediction(prediction, out_dir, options)
    ranking = options.review_ranking(prediction)
    mask = prediction.mask.array.astype(np.int64)
    uncertainty = prediction.maps[ranking.map_name].array
    errors = mask != reference.array
    written["errors"] = save_volume(Volume(errors.astype(np.uint8), image.affine), Path(out_dir) / "errors.nii.gz")
    voxel_ml = float(abs(np.linalg.det(image.affine[:3, :3]))) / 1000.0
    labels = read_card(model_dir).labels
    figures = heldout_figures(mask, reference.array.astype(np.int64), uncertainty, ranking, labels, voxel_ml, top)
    layers = DemoLayers(image.array, mask, reference.array.astype(np.int64), uncertainty)
    png = Path(out_dir) / "errors_vs_uncertainty.png"
    written["figure"] = save_demo_figure(layers, ranking, figures, png, top)
    return written, figures


def measure_heldout(model_dir: str | Path, image: str | Path, reference: str | Path) -> dict[str, Any]:
    """:func:`score_heldout` into a temporary folder; returns the figures only."""
    with tempfile.TemporaryDirectory() as tmp:
        return score_heldout(model_dir, image, reference, Path(tmp) / "prediction")[1]


def model_card_markdown(model_dir: str | Path) -> str:
    """MODEL_CARD.md text from ``model.json``: task, labels, spacing, method, data licence, figures, command."""
    card = read_card(model_dir)
    t = card.training
    held = t.get("heldout", {})
    train_cfg = t.get("config", {}).get("train", {})
    run = t.get("history", {}).get("net", {})
    lines = [
        "# Starter model: brain tissue (grey / white matter) on T1 MRI",
        "",
        "Task: segment grey and white matter of a T1-weighted brain MRI, with a voxel-wise uncertainty map.",
        f"Labels: {', '.join(f'{k} = {v}' for k, v in card.labels.items())}.",
        "Spacing: trained at 2 mm isotropic (MNI152 space); images are predicted on their own grid.",
        f"Method: {card.method} ({json.dumps(card.options)}), U-Net widths {card.net.get('channels')}, "
        f"patch {card.patch_size}; Adam, nnU-Net patch augmentations ({train_cfg.get('augment')}), stopped by "
        f"{run.get('stopped_by')} after {run.get('iterations')} of at most {train_cfg.get('iterations')} steps "
        f"(validation Dice every {train_cfg.get('val_every')} steps, patience {train_cfg.get('patience')}, "
        f"time budget {train_cfg.get('time_budget_s')} s); best validation Dice {_round(run.get('best_val_dice'))} "
        f"at step {run.get('best_step')}, whose weights are kept.",
        f"Training data: {DATA_LICENCE}. {_cases(t.get('data', {}))}: the template and smooth random "
        "deformations of it, with bias, gamma and magnitude-noise changes, the noise level drawn per case (also "
        "in the air around the head) (napari_uqseg.core.sample_data.brain_dataset).",
        "Intended use: a demonstration and a first-start model; not for clinical decisions.",
        "",
        "## Measured on the held-back scan",
        "Its own deformation plus a bias field, a contrast (gamma) change and a resolution loss "
        "(core.shifts, HELDOUT_SHIFTS in core/sample_data.py) and magnitude noise; never trained on. "
        "Review regions ranked as `uqseg predict` and the viewers rank them (core.predict_options: mutual "
        "information for MC-Dropout, regions by expected errors) along axial slices. Re-measured by "
        "`python scripts/train_starter_model.py --measure-only` (MC-Dropout draws seeded: `uqseg demo` prints "
        "the same figures).",
        "",
        f"- Dice: {held.get('dice')}",
        f"- Volume (ml): {held.get('volume_ml')}; reference {held.get('reference_volume_ml')}",
        f"- Case score: {_round(held.get('case_score'))}",
        *_review_lines(held.get("review", {})),
        *_band_lines(held.get("by_uncertainty", {})),
        f"- Training time: {t.get('train_seconds_one_thread')} s wall clock, one CPU thread on a 2-core machine shared "
        "with other jobs" + (f" (load average {t['load_average']} at the end)" if "load_average" in t else ""),
        "",
        f"Made by: `{t.get('command')}`",
        "",
    ]
    return "\n".join(lines)


def _review_lines(review: dict[str, Any]) -> list[str]:
    """The card's lines on the top review regions (``core.review_hits.review_hits`` figures)."""
    if "precision_top" not in review:
        return []
    top = review["top_regions"]
    return [
        f"- Share of the voxels in the top {top} review regions ({review['region_voxels']} voxels) that are wrong: "
        f"{_pct(review['precision_top'])}; {top} random regions of the same shapes in the reviewed area: "
        f"{_pct(review['precision_random'])} (5-95 %: {_pct(review['precision_random_p5'])}-"
        f"{_pct(review['precision_random_p95'])}); the whole reviewed area ({review['roi_voxels']} voxels): "
        f"{_pct(review['precision_roi'])}; best possible: {_pct(review['precision_oracle'])}",
        f"- Share of all {review['errors']} error voxels inside the top {top} regions: {_pct(review['share_top'])}; "
        f"random regions: {_pct(review['share_random'])}; best possible with as many voxels: "
        f"{_pct(review['share_oracle'])}",
    ]


def _band_lines(bands: dict[str, Any]) -> list[str]:
    """The card's line on the error rate of the most and least uncertain voxels, if measured."""
    if "most_uncertain" not in bands:
        return []
    return [
        f"- Share wrong of the most uncertain {_pct(bands['most'])} of the reviewed voxels: "
        f"{_pct(bands['most_uncertain'])}; of the least uncertain {_pct(bands['least'])}: "
        f"{_pct(bands['least_uncertain'])}"
    ]


def _cases(data: dict[str, Any]) -> str:
    train, val = len(data.get("train_cases", [])), len(data.get("val_cases", []))
    return f"{train + val} cases ({train} trained on, {val} for validation)"


def _round(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def store_half_precision(model_dir: str | Path) -> Path:
    """Rewrite the model's weights as float16 (half the download; loading casts them back to float32)."""
    import torch

    from napari_uqseg.engine.checkpoint import atomic_torch_save
    from napari_uqseg.engine.methods.base import WEIGHTS_FILE

    path = Path(model_dir) / WEIGHTS_FILE
    state = torch.load(path, map_location="cpu", weights_only=True)
    atomic_torch_save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)
    return path


def update_card_training(model_dir: str | Path, **fields: Any) -> None:
    """Add ``fields`` to the card's training summary, leaving the weights alone."""
    card = read_card(model_dir)
    card.training.update(fields)
    atomic_write_bytes(Path(model_dir) / CARD_FILE, card.to_json().encode())


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def write_model_card(model_dir: str | Path) -> Path:
    """Write ``MODEL_CARD.md`` beside ``model.json``."""
    path = Path(model_dir) / "MODEL_CARD.md"
    path.write_text(model_card_markdown(model_dir))
    return path
