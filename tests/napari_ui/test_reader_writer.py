"""Reader, writer and sample data through the npe2 manifest: the affine survives every trip."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume
from napari_uqseg.napari_ui.io import dicom_series_volume, get_reader, write_labels
from napari_uqseg.napari_ui.layers import layer_affine, layer_kwargs

pytestmark = pytest.mark.gui

PLUGIN = "napari-uqseg"


def _affine(linear: np.ndarray, origin=(-10.0, 5.0, 2.5)) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3], a[:3, 3] = linear, origin
    return a


def _rotation(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])


FLIPPED = _affine(np.diag([-0.8, -0.9, 2.5]))  # LPS-style flips, as most scanner exports have
ROTATED = _affine(_rotation(30) @ np.diag([0.8, 0.9, 2.5]))
SHEARED = _affine(np.array([[1.0, 0.3, 0.0], [0.0, 1.2, 0.0], [0.0, 0.0, 1.5]]))


@pytest.mark.parametrize(("affine", "kind"), [(FLIPPED, "scale"), (ROTATED, "rotate"), (SHEARED, "affine")])
def test_nifti_opens_with_its_affine(make_napari_viewer, tmp_path, affine, kind):
    rng = np.random.default_rng(0)
    data = rng.normal(100, 10, (6, 7, 8)).astype(np.float32)
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin=PLUGIN)
    assert layer.name == "scan" and layer._type_string == "image"
    np.testing.assert_allclose(layer.data, data)
    np.testing.assert_allclose(layer_affine(layer), affine, atol=1e-6)
    voxel = np.array([2.0, 3.0, 4.0])
    if kind == "scale":  # the axis-aligned case is plain scale/translate, signs included; world = RAS mm
        np.testing.assert_allclose(layer.data_to_world(voxel), (affine @ [*voxel, 1])[:3], atol=1e-5)
        np.testing.assert_allclose(layer.scale, [-0.8, -0.9, 2.5])
        np.testing.assert_allclose(layer.translate, [-10.0, 5.0, 2.5])
        np.testing.assert_allclose(layer.affine.affine_matrix, np.eye(4))
    else:  # oblique: shown in its own voxel frame (exact slices); the rest is the display_to_ras matrix
        np.testing.assert_allclose(layer.rotate, np.eye(3), atol=1e-9)
        np.testing.assert_allclose(layer.affine.affine_matrix, np.eye(4))
        to_ras = np.asarray(layer.metadata["display_to_ras"])
        np.testing.assert_allclose((to_ras @ [*layer.data_to_world(voxel), 1])[:3], (affine @ [*voxel, 1])[:3])


def test_integer_file_with_few_values_opens_as_labels(make_napari_viewer, tmp_path):
    label = np.zeros((5, 6, 7), np.uint8)
    label[1:4, 2:5, 3:6] = 2
    nib.save(nib.Nifti1Image(label, FLIPPED), tmp_path / "seg.nii")
    [layer] = make_napari_viewer().open(str(tmp_path / "seg.nii"), plugin=PLUGIN)
    assert layer._type_string == "labels"
    np.testing.assert_array_equal(layer.data, label)
    np.testing.assert_allclose(layer_affine(layer), FLIPPED)


def test_labels_writer_round_trip(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    label = np.zeros((6, 7, 8), np.uint8)
    label[2:5, 1:4, 3:7] = 1
    layer = viewer.add_labels(label, name="edited", **layer_kwargs(Volume(label, ROTATED)))
    out = tmp_path / "edited.nii.gz"
    written = layer.save(str(out), plugin=PLUGIN)
    assert written == [str(out)]
    img = nib.load(out)
    np.testing.assert_array_equal(np.asarray(img.dataobj), label)
    np.testing.assert_allclose(img.affine, ROTATED, atol=1e-5)
    assert img.get_data_dtype() == np.uint8


def test_writer_refuses_bad_names_and_values(tmp_path):
    with pytest.raises(InputError, match=r"\.nii"):
        write_labels(str(tmp_path / "mask.png"), np.ones((3, 3, 3), np.uint8), {})
    with pytest.raises(InputError, match="non-negative integers"):
        write_labels(str(tmp_path / "mask.nii.gz"), np.full((3, 3, 3), -1, np.int16), {})


def test_corrupt_nifti_names_the_file(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    reader = get_reader(str(bad))
    with pytest.raises(InputError, match="broken.nii.gz"):
        reader(str(bad))
    assert get_reader(str(tmp_path / "notes.txt")) is None


def _write_dicom_series(folder: Path, volume: np.ndarray, orientation, origin, spacing, step, shuffle=True) -> None:
    """A minimal CT series (one file per slice, written in shuffled order so sorting is exercised)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir()
    series = generate_uid()
    order = np.random.default_rng(1).permutation(volume.shape[0]) if shuffle else range(volume.shape[0])
    for k in order:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.Modality = series, "CT"
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.ImageOrientationPatient = list(orientation)
        ds.ImagePositionPatient = list(np.asarray(origin) + k * np.asarray(step))
        ds.RescaleSlope, ds.RescaleIntercept = 2, -1024
        ds.PixelData = volume[k].astype(np.int16).tobytes()
        ds.save_as(folder / f"IM{k:04d}", enforce_file_format=True)
    (folder / "README.txt").write_text("not a DICOM file; the reader skips it")


def test_dicom_series_becomes_nifti_order_with_ras_affine(make_napari_viewer, tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 500, (5, 6, 7)).astype(np.int16)  # (slice, row, column)
    orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    _write_dicom_series(
        tmp_path / "series", raw, orientation, origin=(-20.0, -30.0, 40.0), spacing=(0.9, 0.8), step=(0, 0, 2.5)
    )
    volume = dicom_series_volume(tmp_path / "series")
    # NIfTI order (column, row, slice), slope/intercept applied
    np.testing.assert_allclose(volume.array, raw.transpose(2, 1, 0) * 2.0 - 1024)
    expected = np.array([[-0.8, 0, 0, 20.0], [0, -0.9, 0, 30.0], [0, 0, 2.5, 40.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(volume.affine, expected, atol=1e-6)
    [layer] = make_napari_viewer().open(str(tmp_path / "series"), plugin=PLUGIN)
    assert layer.name == "series"
    np.testing.assert_allclose(layer_affine(layer), expected, atol=1e-6)


def test_oblique_dicom_slices_are_sorted_along_the_normal(tmp_path):
    raw = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2) * 10
    c, s = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
    orientation = (c, s, 0.0, -s, c, 0.0)  # rotated about z; normal stays +z
    _write_dicom_series(tmp_path / "oblique", raw, orientation, origin=(0, 0, 0), spacing=(1.0, 1.0), step=(0, 0, 3.0))
    volume = dicom_series_volume(tmp_path / "oblique")
    np.testing.assert_allclose(volume.array[0, 0, :], raw[:, 0, 0] * 2.0 - 1024)  # slices in position order
    np.testing.assert_allclose(volume.affine[:3, 2], [0, 0, 3.0], atol=1e-6)
    np.testing.assert_allclose(volume.affine[:3, 0], [-c, -s, 0], atol=1e-6)


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    assert get_reader(str(tmp_path / "empty")) is None
    with pytest.raises(InputError, match="no DICOM"):
        dicom_series_volume(tmp_path / "empty")


def test_sample_data_is_offline_and_placed(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample(PLUGIN, "synthetic")
    assert [layer.name for layer in layers] == ["synthetic scan", "synthetic reference"]
    image, label = layers
    assert image.data.shape == (32, 32, 32) and label._type_string == "labels" and not label.visible
    np.testing.assert_allclose(image.scale, [1.0, 1.2, 1.5])
    np.testing.assert_allclose(image.translate, [-10.0, 5.0, 2.5])
