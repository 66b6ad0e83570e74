"""The README's main job: ``uqseg demo`` predicts a held-back brain with the starter model (or trains with --train)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
from matplotlib.image import imread

from napari_uqseg.cli import main as uqseg
from napari_uqseg.engine.overlay import overlay_slice, save_overlay_png


def test_demo_uses_the_starter_model_and_scores_errors_against_uncertainty(tmp_path, capsys):
    out = tmp_path / "demo"
    assert uqseg(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    held = nib.load(out / "data" / "heldout.nii.gz")
    assert held.shape == (99, 117, 95)  # 2 mm
    folder = out / "predictions" / "brain-starter"
    for name in ["mask", "entropy", "mutual_information", "errors"]:
        written = nib.load(folder / f"{name}.nii.gz")
        assert written.shape == held.shape
        np.testing.assert_allclose(written.affine, held.affine)
    summary = json.loads((out / "summary.json").read_text())["brain-starter"]
    review = summary["review"]
    assert review["top_regions"] == 5 and review["errors"] > 0
    assert 0.0 <= review["share_random"] <= 1.0 and 0.0 <= review["share_top"] <= 1.0
    assert review["region_errors"] == round(review["precision_top"] * review["region_voxels"])
    assert review["precision_roi"] == review["errors"] / review["roi_voxels"]
    assert set(summary["volume_ml"]) == {"grey matter", "white matter"}
    errors = np.asarray(nib.load(folder / "errors.nii.gz").dataobj)
    assert int(errors.sum()) == review["errors"]  # the error map is the one scored
    ranking = json.loads((folder / "review.json").read_text())
    assert ranking["axis"] == 2 and ranking["case_score"] == summary["case_score"]
    assert "errors inside the top 5 review regions" in printed and "case score" in printed
    assert "of their voxels are wrong" in printed and "share of all" in printed
    assert imread(folder / "errors_vs_uncertainty.png").shape[2] in (3, 4)


def test_demo_train_flag_trains_instead(tmp_path, capsys):
    out = tmp_path / "demo"
    assert uqseg(["demo", "--out", str(out), "--train", "--iterations", "2", "--methods", "deterministic"]) == 0
    assert (out / "models" / "deterministic" / "model.json").is_file()
    assert (out / "predictions" / "deterministic" / "errors_vs_uncertainty.png").is_file()
    assert "deterministic:" in capsys.readouterr().out


def test_overlay_shows_the_uncertain_slice_around_the_mask_not_background_noise(tmp_path):
    mask = np.zeros((20, 20, 10), np.uint8)
    mask[8:12, 8:12, 2:5] = 1
    u = np.zeros(mask.shape, np.float32)
    u[:, :, 8] = 1.0  # loud noise far from the structure, on slice 8
    u[8:12, 8:12, 3] = 0.5  # the structure's most uncertain slice is 3
    assert overlay_slice(mask, u, axis=2) == 3
    assert overlay_slice(mask, u, axis=0) in range(8, 12)
    assert save_overlay_png(np.ones(mask.shape, np.float32), mask, u, tmp_path / "o.png").is_file()
