"""An oblique, anisotropic scan opens on its acquisition slices with anatomical directions; review jumps and
corrections land on the intended voxels (a display transform: data and true affine untouched)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.napari_ui.layers import layer_affine, viewer_camera
from napari_uqseg.napari_ui.orientation import text_overlay

pytestmark = pytest.mark.gui

PLUGIN = "napari-uqseg"
LONG = 120_000


def _oblique_affine() -> np.ndarray:
    """0.8 x 0.9 mm pixels, 4 mm slices, tilted 20 degrees about the left-right axis, off-centre origin."""
    t = np.deg2rad(20)
    tilt = np.array([[1.0, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = tilt @ np.diag([0.8, 0.9, 4.0]), [-12.0, 20.0, 7.5]
    return affine


def _shown_slice(layer) -> np.ndarray:
    """The 2-D array napari currently draws for ``layer`` (rows, columns of the display)."""
    return np.asarray(layer._slice.image.raw)


def test_oblique_anisotropic_scan_plane_labels_review_jump_and_correction(driver, qtbot, local_data_dir, tmp_path):
    image, _ = synthetic_case((40, 36, 16), seed=3)
    affine = _oblique_affine()
    path = tmp_path / "oblique.nii.gz"
    nib.save(nib.Nifti1Image(image.array, affine), path)
    viewer, widget = driver.open(sample=False)
    driver.connect_local(widget, local_data_dir)
    [layer] = viewer.open(str(path), plugin=PLUGIN)

    # displayed plane: the slider walks the 16 acquired 4 mm slices (voxel axis 2), not the 40 columns
    assert viewer.dims.order == (2, 1, 0) and tuple(viewer.dims.displayed) == (1, 0)
    assert viewer.dims.nsteps[2] == 16
    assert viewer.dims.axis_labels == ("L->R", "P->A", "I->S")
    assert tuple(map(str, viewer_camera(viewer).orientation2d)) == ("up", "left")
    overlay = text_overlay(viewer)
    assert overlay.visible and overlay.text == "top A | bottom P | left R | right L | slider I->S"
    k = int(round(layer.world_to_data(viewer.dims.point)[2]))
    np.testing.assert_array_equal(_shown_slice(layer), image.array[:, :, k].T)
    np.testing.assert_allclose(layer_affine(layer), affine, atol=1e-9)  # the true placement is kept

    driver.predict(widget, "tiny_det", image="oblique")
    case = widget.cases["oblique"]
    assert case.cursor.ranking.axis == 2  # review slices are the displayed slices
    mask = viewer.layers["oblique mask"]
    np.testing.assert_allclose(layer_affine(mask), affine, atol=1e-6)

    # review jump: the drawn slice is the region's slice, for the image and the mask alike
    widget.review.select_row(0)
    region = case.cursor.current
    assert region is not None
    np.testing.assert_array_equal(_shown_slice(layer), image.array[:, :, region.slice_index].T)
    np.testing.assert_array_equal(_shown_slice(mask), mask.data[:, :, region.slice_index].T)

    # a correction painted on the shown slice reaches the server on exactly those voxels, with the true affine
    (a0, a1), (b0, b1) = region.bbox[0], region.bbox[1]
    data = mask.data
    data[a0:a1, b0:b1, region.slice_index] = 2
    mask.data = data
    widget.jobs.submit()
    qtbot.waitUntil(lambda: widget.jobs.submit_worker is None, timeout=LONG)
    assert widget.jobs.submitted, widget.jobs.submit_status.text()
    stored = widget.backend.service.store.correction(widget.jobs.submitted[-1])
    np.testing.assert_array_equal(stored.array, mask.data)
    assert np.all(stored.array[a0:a1, b0:b1, region.slice_index] == 2)
    np.testing.assert_allclose(stored.affine, affine, atol=1e-4)
