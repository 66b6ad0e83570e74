"""``uqseg predict`` on a DICOM series folder: NIfTI outputs plus a SEG and parametric maps that match them."""

import numpy as np
import pydicom

from napari_uqseg.cli import main
from napari_uqseg.core.dicom_objects import parametric_map_to_volume, segmentation_to_volume
from napari_uqseg.core.dicom_series import read_dicom
from napari_uqseg.core.nifti_io import load_label
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.dicom_series import oriented_affine, quantised, series_datasets, write_folder


def test_predict_writes_seg_and_maps_matching_the_nifti_outputs(tiny_models, tmp_path, capsys):
    image, _ = synthetic_case((20, 18, 16), 4)
    folder = write_folder(
        series_datasets(quantised(Volume(image.array, oriented_affine("sagittal"))), True), tmp_path / "s"
    )
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            "--model",
            str(tiny_models["tiny_mcd"]),
            "--image",
            str(folder),
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    series = read_dicom(folder)
    mask = load_label(out / "mask.nii.gz")  # load_label refuses an all-background map
    seg = pydicom.dcmread(out / "mask.seg.dcm")
    np.testing.assert_array_equal(segmentation_to_volume(seg, series).array, mask.array)
    np.testing.assert_allclose(mask.affine, series.volume.affine, atol=1e-4)
    assert "tiny_mcd local mc_dropout" in seg.ContentDescription
    pm = pydicom.dcmread(out / "mutual_information.pm.dcm")
    saved = __import__("nibabel").load(out / "mutual_information.nii.gz").get_fdata(dtype=np.float32)
    np.testing.assert_allclose(parametric_map_to_volume(pm, series).array, saved, rtol=0, atol=1e-6)
