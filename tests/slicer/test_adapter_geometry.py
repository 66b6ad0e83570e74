"""Geometry through the MRML adapter: node IJK-to-RAS -> NIfTI affine on the wire -> results on the node's grid.

Uses the fake MRML layer (``fake_mrml``) with Slicer's semantics: KJI arrays, RAS matrices, LPS files flipped
to RAS on load. The wire step is the real NIfTI codec of ``napari_uqseg.core.nifti_io``.
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_mrml import LPS_TO_RAS, write_raw_nrrd
from UQSegLib import geometry, review_table

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import image_from_bytes, nifti_bytes, volume_from_bytes
from napari_uqseg.core.review import build_review
from napari_uqseg.core.volume import Volume

SHAPE_IJK = (7, 9, 5)  # all different, so any axis mix-up changes a shape
MARKER = (5, 2, 3)  # (i, j, k) of a bright 2x2x2 block's first corner


def oblique_ijk_to_lps() -> np.ndarray:
    """Rotated, anisotropic, off-origin voxel grid in LPS (as a DICOM/NRRD file would store it)."""
    angle = np.deg2rad(20.0)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rot @ np.diag([0.8, 1.1, 2.5])
    m[:3, 3] = [-31.5, 12.25, 40.0]
    return m


def image_with_marker(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, 5.0, SHAPE_IJK).astype(np.float32)
    i, j, k = MARKER
    image[i : i + 2, j : j + 2, k : k + 2] = 1000.0
    return image


@pytest.fixture()
def lps_node(fake_slicer, tmp_path):
    scene, _ = fake_slicer
    import slicer

    path = write_raw_nrrd(tmp_path / "case.nrrd", image_with_marker(), oblique_ijk_to_lps(), "left-posterior-superior")
    return slicer.util.loadVolume(path)


def server_side_prediction(upload: bytes) -> tuple[bytes, bytes, np.ndarray]:
    """What a server does with the geometry: parse the NIfTI, segment in its IJK grid, answer on that grid."""
    image = image_from_bytes(upload, "upload")
    mask = Volume((image.array > 500).astype(np.uint8), image.affine)
    uncertainty = Volume(np.abs(image.array - 100.0) / 1000.0, image.affine)
    return nifti_bytes(mask), nifti_bytes(uncertainty), image.affine


def test_fake_loads_lps_file_like_slicer(lps_node):
    # Slicer's array is [k, j, i] and its matrix RAS, whatever the file stored
    assert lps_node.array.shape == SHAPE_IJK[::-1]
    i, j, k = MARKER
    assert lps_node.array[k, j, i] == 1000.0
    np.testing.assert_allclose(lps_node.ijk_to_ras, LPS_TO_RAS @ oblique_ijk_to_lps())


def test_node_matrix_reaches_server_as_nifti_affine(fake_slicer, lps_node):
    _, adapter = fake_slicer
    volume = adapter.volume_of(lps_node)
    assert volume.shape == SHAPE_IJK
    _, _, server_affine = server_side_prediction(nifti_bytes(volume))
    server_image = image_from_bytes(nifti_bytes(volume))
    i, j, k = MARKER
    assert server_image.array[i, j, k] == 1000.0
    # the marker's world position on the server is the file's LPS position with x and y negated
    lps = oblique_ijk_to_lps() @ np.array([i, j, k, 1.0])
    ras = server_affine @ np.array([i, j, k, 1.0])
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-4)


def test_results_come_back_on_the_node_grid(fake_slicer, lps_node):
    scene, adapter = fake_slicer
    matrix = adapter.ijk_to_ras_of(lps_node)
    mask_bytes, map_bytes, _ = server_side_prediction(nifti_bytes(adapter.volume_of(lps_node)))
    mask_img = volume_from_bytes(mask_bytes, "mask")
    mask = Volume(np.asarray(mask_img.dataobj), mask_img.affine)
    mask_kji = geometry.kji_from_volume(mask, matrix, lps_node.array.shape, "mask")

    seg, ids = adapter.show_segmentation(mask_kji, {1: "marker"}, lps_node, "UQSeg result")
    written = scene.calls_named("updateSegmentBinaryLabelmapFromArray")
    assert len(written) == 1
    np.testing.assert_array_equal(written[0][3], (lps_node.array > 500).astype(np.uint8))  # same voxels, same order
    np.testing.assert_allclose(seg.reference_geometry[0], lps_node.ijk_to_ras)
    assert seg.GetSegmentation().GetSegment(ids[1]).tags[review_table.STATUS_TAG] == review_table.STATUS_NOT_STARTED

    heat_img = volume_from_bytes(map_bytes, "map")
    heat = Volume(np.asarray(heat_img.get_fdata(dtype=np.float32)), heat_img.affine)
    heat_kji = geometry.kji_from_volume(heat, matrix, lps_node.array.shape, "entropy")
    heat_node = adapter.show_uncertainty(heat_kji, lps_node, "UQSeg entropy", opacity=0.4)
    (_, name, cls, array, ijk_to_ras) = scene.calls_named("addVolumeFromArray")[0]
    assert (name, cls) == ("UQSeg entropy", "vtkMRMLScalarVolumeNode")
    np.testing.assert_allclose(ijk_to_ras, lps_node.ijk_to_ras)
    i, j, k = MARKER
    assert array[k, j, i] == pytest.approx(0.9, abs=1e-2)
    assert heat_node.display.color_node_id == adapter.HEAT_COLOR_NODE_ID
    assert not heat_node.display.auto_window_level
    layers = scene.calls_named("setSliceViewerLayers")[-1][1]
    assert layers["foreground"] is heat_node and layers["background"] is lps_node
    assert layers["foregroundOpacity"] == pytest.approx(0.4)

    # the (unedited) segmentation read back for a correction is the server's mask again, in IJK
    label_kji = adapter.label_of(seg, lps_node)
    np.testing.assert_array_equal(geometry.volume_from_kji(label_kji, matrix).array, mask.array)


def test_region_centre_jumps_to_the_marker(fake_slicer, lps_node):
    scene, adapter = fake_slicer
    volume = adapter.volume_of(lps_node)
    mask = Volume((volume.array > 500).astype(np.uint8), volume.affine)
    uncertainty = np.zeros(SHAPE_IJK)
    i, j, k = MARKER
    uncertainty[i : i + 2, j : j + 2, k : k + 2] = 1.0
    ranking = build_review(uncertainty, mask.array, axis=2, min_voxels=1, threshold=0.5)
    rows = review_table.review_rows(ranking, mask)
    assert [r.label for r in rows] == [1]
    adapter.jump_to(rows[0].center_ras)
    (_, ras, mode) = scene.calls_named("JumpAllSlices")[0]
    assert mode == 1  # centred
    lps = oblique_ijk_to_lps() @ np.array([i + 0.5, j + 0.5, k + 0.5, 1.0])
    np.testing.assert_allclose(ras, [-lps[0], -lps[1], lps[2]], atol=1e-6)
    np.testing.assert_allclose(geometry.ras_to_voxel(np.array(ras), volume.affine), [i + 0.5, j + 0.5, k + 0.5])


def test_ras_nifti_file_keeps_its_affine(fake_slicer, tmp_path):
    import nibabel as nib
    import slicer

    _, adapter = fake_slicer
    affine = np.array([[-0.9, 0, 0, 60.0], [0, 1.2, 0, -40.0], [0, 0, 3.0, 7.5], [0, 0, 0, 1]])  # radiological x
    data = image_with_marker(1)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "case.nii.gz")
    node = slicer.util.loadVolume(tmp_path / "case.nii.gz")
    volume = adapter.volume_of(node)
    np.testing.assert_allclose(volume.affine, affine)
    np.testing.assert_array_equal(volume.array, data)


def test_off_grid_result_is_rejected(fake_slicer, lps_node):
    _, adapter = fake_slicer
    volume = adapter.volume_of(lps_node)
    shifted = volume.affine.copy()
    shifted[0, 3] += 1.0
    with pytest.raises(InputError, match="not on the input volume's grid"):
        geometry.kji_from_volume(Volume(volume.array, shifted), volume.affine, lps_node.array.shape)
    with pytest.raises(InputError, match="differs from the volume's"):
        geometry.kji_from_volume(Volume(volume.array[:-1], volume.affine), None, lps_node.array.shape)


def test_statuses_and_states_are_stored_on_the_node(fake_slicer, lps_node):
    _, adapter = fake_slicer
    mask_kji = (lps_node.array > 500).astype(np.uint8)
    seg, ids = adapter.show_segmentation(mask_kji, {1: "marker"}, lps_node, "UQSeg result")
    adapter.set_segment_statuses(
        seg, ids, {1: review_table.STATUS_FLAGGED}, '{"map": "entropy", "states": {"1": "flagged"}}'
    )
    assert seg.GetSegmentation().GetSegment(ids[1]).tags["Segmentation.Status"] == "flagged"
    assert adapter.saved_states(seg) == '{"map": "entropy", "states": {"1": "flagged"}}'


def test_results_follow_the_input_transform(fake_slicer, lps_node):
    _, adapter = fake_slicer
    lps_node.SetAndObserveTransformNodeID("vtkMRMLLinearTransformNode7")
    seg, _ = adapter.show_segmentation((lps_node.array > 500).astype(np.uint8), {1: "m"}, lps_node, "seg")
    heat = adapter.show_uncertainty(np.zeros(lps_node.array.shape, np.float32), lps_node, "heat")
    assert seg.GetTransformNodeID() == heat.GetTransformNodeID() == "vtkMRMLLinearTransformNode7"


def test_bad_inputs_name_the_problem(fake_slicer, lps_node):
    _, adapter = fake_slicer
    import slicer

    with pytest.raises(InputError, match="no volume selected"):
        adapter.image_of(None)
    empty = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty")
    with pytest.raises(InputError, match="no segment created by UQSeg"):
        adapter.label_of(empty, lps_node)
    with pytest.raises(InputError, match="3D scalar volume"):
        geometry.volume_from_kji(np.zeros((2, 3, 4, 3)), np.eye(4), "rgb")
    with pytest.raises(InputError, match="singular"):
        geometry.volume_from_kji(np.zeros((2, 3, 4)), np.diag([1.0, 0.0, 1.0, 1.0]), "flat")
