"""Slicer's PACS picker logic against a real Orthanc and ``uqseg serve --dicomweb`` (no Slicer needed)."""

import io

import numpy as np
import pydicom
from dicomweb_client.api import DICOMwebClient
from UQSegLib.logic import UQSegSession
from UQSegLib.pacs import segment_pacs_series, series_choices, study_choices

from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.dicom_series import PATIENT_ID, oriented_affine, quantised, series_datasets, to_bytes
from napari_uqseg.testing.orthanc import orthanc, pacs_server  # noqa: F401  (pytest fixtures)


def test_series_from_the_pacs_lands_on_its_own_grid(orthanc, pacs_server):  # noqa: F811
    image, _ = synthetic_case((20, 18, 16), 11)
    volume = quantised(Volume(image.array, oriented_affine("sagittal")))
    datasets = series_datasets(volume)
    DICOMwebClient(orthanc.dicomweb).store_instances([pydicom.dcmread(io.BytesIO(to_bytes(d))) for d in datasets])
    study, series = str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)

    session = UQSegSession.connect(pacs_server.url, pacs_server.token)
    studies = study_choices(session)
    assert study in [uid for _, uid in studies]
    assert all(PATIENT_ID not in label and "Janeprivate" not in label for label, _ in studies)
    assert [uid for _, uid in series_choices(session, study)] == [series]
    image_kji, ijk_to_ras, result, answer = segment_pacs_series(session, study, series, "tiny_det")
    np.testing.assert_array_equal(image_kji, volume.array.transpose(2, 1, 0))
    np.testing.assert_allclose(ijk_to_ras, volume.affine, atol=1e-4)
    expected = session.predict(image_kji, ijk_to_ras, "tiny_det")  # the array path Slicer takes for a loaded node
    np.testing.assert_array_equal(result.mask_kji, expected.mask_kji)
    assert answer["stored"] and answer["segmentation"]["sop"]
    session.close()
