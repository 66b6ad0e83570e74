"""The README's main job: ``uqseg demo`` trains on the bundled brain, predicts and writes every output."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from matplotlib.image import imread

from napari_uqseg.cli import main as uqseg
from napari_uqseg.engine.overlay import overlay_slice, save_overlay_png


def test_demo_writes_masks_maps_review_and_overlays(tmp_path, capsys):
    out = tmp_path / "demo"
    code = uqseg(["demo", "--out", str(out), "--iterations", "2", "--methods", "deterministic,mc_dropout"])
    assert code == 0
    printed = capsys.readouterr().out
    held = nib.load(out / "data" / "heldout.nii.gz")
    for method, maps in [("deterministic", ["entropy"]), ("mc_dropout", ["entropy", "mutual_information"])]:
        folder = out / "predictions" / method
        assert str(folder / "overlay.png") in printed  # the demo says where its results are
        for name in ["mask", *maps]:
            written = nib.load(folder / f"{name}.nii.gz")
            assert written.shape == held.shape
            np.testing.assert_allclose(written.affine, held.affine)
        assert (folder / "review.json").is_file()
        assert imread(folder / "overlay.png").shape[2] in (3, 4)


def test_overlay_shows_the_uncertain_slice_around_the_mask_not_background_noise(tmp_path):
    mask = np.zeros((20, 20, 10), np.uint8)
    mask[8:12, 8:12, 2:5] = 1
    u = np.zeros(mask.shape, np.float32)
    u[:, :, 8] = 1.0  # loud noise far from the structure, on slice 8
    u[8:12, 8:12, 3] = 0.5  # the structure's most uncertain slice is 3
    assert overlay_slice(mask, u, axis=2) == 3
    assert overlay_slice(mask, u, axis=0) in range(8, 12)
    assert save_overlay_png(np.ones(mask.shape, np.float32), mask, u, tmp_path / "o.png").is_file()
