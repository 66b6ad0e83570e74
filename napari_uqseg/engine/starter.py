"""The starter model's recipe, its held-back measurement and its human-readable model card.

``scripts/train_starter_model.py`` trains it; ``core.bundled_models`` says where it ships.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.core.nifti_io import load_image, load_label
from napari_uqseg.core.review_hits import heldout_figures
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.engine.api import predict_file
from napari_uqseg.engine.store import read_card

STARTER_METHOD = "mc_dropout"
#: small U-Net (about 0.35 M weights, 1.4 MB), 48 mm^3 patches at 2 mm: trains in about 12 min on one loaded core
STARTER_CONFIG: dict[str, dict[str, Any]] = {
    "net": {"channels": [8, 16, 32, 64]},
    "train": {"patch_size": [48, 48, 48], "batch_size": 2, "iterations": 350, "lr": 3e-3, "seed": 0},
    "method": {"rate": 0.2, "samples": 8},
}
DATA_LICENCE = (
    "ICBM 2009a nonlinear symmetric MNI152 template and tissue maps (Fonov et al. 2009/2011), as shipped in "
    "nilearn's wheel; copyright McConnell Brain Imaging Centre, free use with the copyright notice kept "
    "(see the licence text distributed with the ICBM 2009 atlases)"
)


def measure_heldout(model_dir: str | Path, image: str | Path, reference: str | Path) -> dict[str, Any]:
    """Predict ``image`` with the model and score it against ``reference`` (``core.review_hits.heldout_figures``)."""
    with tempfile.TemporaryDirectory() as tmp:
        written = predict_file(model_dir, image, Path(tmp) / "prediction")
        mask = load_image(written["mask"]).array.astype(np.int64)
        ranking = ReviewRanking.from_dict(json.loads(written["review"].read_text()))
    card = read_card(model_dir)
    volume = load_label(reference)
    voxel_ml = float(abs(np.linalg.det(volume.affine[:3, :3]))) / 1000.0
    return heldout_figures(mask, volume.array.astype(np.int64), ranking, card.labels, voxel_ml)


def model_card_markdown(model_dir: str | Path) -> str:
    """MODEL_CARD.md text from ``model.json``: task, labels, spacing, method, data licence, figures, command."""
    card = read_card(model_dir)
    t = card.training
    held = t.get("heldout", {})
    review = held.get("review", {})
    lines = [
        "# Starter model: brain tissue (grey / white matter) on T1 MRI",
        "",
        "Task: segment grey and white matter of a T1-weighted brain MRI, with a voxel-wise uncertainty map.",
        f"Labels: {', '.join(f'{k} = {v}' for k, v in card.labels.items())}.",
        "Spacing: trained at 2 mm isotropic (MNI152 space); images are predicted on their own grid.",
        f"Method: {card.method} ({json.dumps(card.options)}), U-Net widths {card.net.get('channels')}, "
        f"patch {card.patch_size}, {t.get('config', {}).get('train', {}).get('iterations')} Adam steps.",
        f"Training data: {DATA_LICENCE}. Training cases are smooth random deformations of the template "
        "with bias, gamma and noise changes (napari_uqseg.testing.brain_sample.brain_dataset).",
        "Intended use: a demonstration and a first-start model; not for clinical decisions.",
        "",
        "## Measured on the held-back scan",
        "Its own deformation plus a bias field, a contrast (gamma) change and a resolution loss "
        "(core.shifts, HELDOUT_SHIFTS in testing/brain_sample.py); never trained on.",
        "",
        f"- Dice: {held.get('dice')}",
        f"- Volume (ml): {held.get('volume_ml')}; reference {held.get('reference_volume_ml')}",
        f"- Case score: {held.get('case_score')}",
        f"- Error voxels inside the top {review.get('top_regions')} review-region boxes: "
        f"{review.get('share_top')} of {review.get('errors')}; random boxes of the same sizes: "
        f"{review.get('share_random')} (5-95 %: {review.get('random_p5')}-{review.get('random_p95')})",
        f"- Training time: {t.get('train_seconds_one_thread')} s on one CPU thread of a loaded 2-core machine",
        "",
        f"Made by: `{t.get('command')}`",
        "",
    ]
    return "\n".join(lines)


def write_model_card(model_dir: str | Path) -> Path:
    """Write ``MODEL_CARD.md`` beside ``model.json``."""
    path = Path(model_dir) / "MODEL_CARD.md"
    path.write_text(model_card_markdown(model_dir))
    return path
