"""The shared DICOM series reader: geometry of every orientation and slice order, multi-frame, zip, napari."""

import numpy as np
import pytest

from napari_uqseg.core.dicom_objects import (
    Provenance,
    dicom_bytes,
    parametric_map_object,
    parametric_map_to_volume,
    segmentation_object,
    segmentation_to_volume,
)
from napari_uqseg.core.dicom_series import read_dicom, read_dicom_zip, series_from_datasets
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.dicom_series import (
    INTERCEPT,
    SLOPE,
    multiframe_dataset,
    oriented_affine,
    quantised,
    series_datasets,
    write_folder,
    zip_bytes,
)

ORIENTATIONS = ("axial", "sagittal", "coronal", "oblique")


def _volume(kind, flip=False, shape=(7, 6, 5)):
    raw = np.random.default_rng(3).normal(0, 300, shape).astype(np.float32)
    return quantised(Volume(raw, oriented_affine(kind, flip_slices=flip)))


@pytest.mark.parametrize("kind", ORIENTATIONS)
@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
def test_series_reads_back_as_the_volume_it_was_written_from(tmp_path, kind, descending):
    volume = _volume(kind)
    folder = write_folder(series_datasets(volume, descending), tmp_path / "series")
    read = read_dicom(folder).volume
    np.testing.assert_array_equal(read.array, volume.array)  # slope/intercept applied, NIfTI voxel order
    np.testing.assert_allclose(read.affine, volume.affine, atol=1e-4)


@pytest.mark.parametrize("kind", ORIENTATIONS)
def test_stack_against_the_normal_is_reversed_onto_the_same_world_points(kind):
    volume = _volume(kind, flip=True)
    read = series_from_datasets(series_datasets(volume)).volume
    np.testing.assert_array_equal(read.array, volume.array[:, :, ::-1])
    # the same voxel centres in RAS millimetres: voxel (i, j, k) of one is (i, j, K-1-k) of the other
    corner = np.array([2, 3, 0, 1.0])
    flipped = np.array([2, 3, volume.shape[2] - 1, 1.0])
    np.testing.assert_allclose(read.affine @ corner, volume.affine @ flipped, atol=1e-4)
    assert np.linalg.det(read.affine[:3, :3]) * np.linalg.det(volume.affine[:3, :3]) < 0


def test_axial_affine_is_the_expected_ras_matrix():
    volume = _volume("axial")
    read = series_from_datasets(series_datasets(volume)).volume
    # LPS x (right->left) becomes RAS -x; LPS origin (12, -30, 45) becomes RAS (-12, 30, 45)
    expected = np.array([[-1.1, 0, 0, -12.0], [0, -0.9, 0, 30.0], [0, 0, 1.6, 45.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(read.affine, expected, atol=1e-5)
    stored = np.frombuffer(series_datasets(volume)[0].PixelData, dtype=np.int16)
    assert stored.size == 7 * 6 and SLOPE != 1 and INTERCEPT != 0  # rescale is exercised


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
def test_enhanced_multiframe_ct_reads_like_the_single_frame_series(descending):
    volume = _volume("oblique")
    series = series_from_datasets([multiframe_dataset(volume, descending)])
    assert series.multiframe
    np.testing.assert_array_equal(series.volume.array, volume.array)
    np.testing.assert_allclose(series.volume.affine, volume.affine, atol=1e-4)
    frames = series.sources[0].PerFrameFunctionalGroupsSequence
    for k, frame in enumerate(series.frame_order):  # slice k of the volume is the frame stored at that position
        position = np.array(frames[frame].PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        lps = np.diag([-1.0, -1, 1, 1]) @ volume.affine @ [0, 0, k, 1]
        np.testing.assert_allclose(position, lps[:3], atol=1e-4)


def test_zip_and_folder_give_the_same_volume(tmp_path):
    volume = _volume("coronal")
    datasets = series_datasets(volume)
    from_zip = read_dicom_zip(zip_bytes(datasets, {"notes/README.txt": b"not DICOM"})).volume
    from_folder = read_dicom(write_folder(datasets, tmp_path / "s")).volume
    np.testing.assert_array_equal(from_zip.array, from_folder.array)
    np.testing.assert_array_equal(from_zip.affine, from_folder.affine)


def test_napari_reader_uses_the_shared_reader(tmp_path):
    from napari_uqseg.napari_ui.io import dicom_series_volume, get_reader

    volume = _volume("sagittal")
    folder = write_folder(series_datasets(volume, descending=True), tmp_path / "sag")
    assert get_reader(str(folder)) is not None
    read = dicom_series_volume(folder)
    np.testing.assert_array_equal(read.array, volume.array)
    np.testing.assert_allclose(read.affine, volume.affine, atol=1e-4)


@pytest.mark.parametrize("multiframe", [False, True], ids=["single-frame", "multi-frame"])
@pytest.mark.parametrize("kind", ["sagittal", "oblique"])
def test_seg_and_parametric_map_round_trip_on_the_source_grid(kind, multiframe):
    import pydicom

    volume = _volume(kind)
    source = [multiframe_dataset(volume, True)] if multiframe else series_datasets(volume, True)
    series = series_from_datasets(source)
    rng = np.random.default_rng(5)
    mask = Volume(rng.integers(0, 3, volume.shape).astype(np.uint8), volume.affine)
    mask.array[:, :, 2] = 0  # an empty slice: omitted from the SEG, still background when read back
    values = Volume(rng.random(volume.shape).astype(np.float32) * 0.7, volume.affine)
    provenance = Provenance("tiny_mcd", "v3", "mc_dropout", "0.1.0")
    seg = segmentation_object(series, mask, {"0": "background", "1": "left", "2": "right"}, provenance)
    pm = parametric_map_object(series, values, "mutual_information", provenance)
    seg_back = pydicom.dcmread(__import__("io").BytesIO(dicom_bytes(seg)))
    pm_back = pydicom.dcmread(__import__("io").BytesIO(dicom_bytes(pm)))
    np.testing.assert_array_equal(segmentation_to_volume(seg_back, series).array, mask.array)
    np.testing.assert_array_equal(parametric_map_to_volume(pm_back, series).array, values.array)
    for ds in (seg_back, pm_back):
        assert "tiny_mcd v3 mc_dropout" in ds.ContentDescription
        assert ds.StudyInstanceUID == series.study_uid
        assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == series.series_uid
    assert [s.SegmentLabel for s in seg_back.SegmentSequence] == ["left", "right"]
