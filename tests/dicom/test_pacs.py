"""The PACS path end to end: a real Orthanc (DICOMweb), ``uqseg serve --dicomweb``, and the torch-free client.

A series stored in Orthanc is predicted by UID; the SEG and the parametric maps must appear in Orthanc,
reference the source series, and read back onto the source grid as the prediction's own NIfTI outputs
(voxel-exact mask; maps exact, as they are stored as float32). The geometry tests compare, for every
orientation and slice order, the mask that comes back from Orthanc with the mask of the NIfTI path.
"""

import io

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from napari_uqseg.client.errors import BadRequest, NotFoundError
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.dicom_objects import parametric_map_to_volume, segmentation_to_volume
from napari_uqseg.core.dicom_series import series_from_datasets
from napari_uqseg.core.nifti_io import float_map_from_bytes, volume_from_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.dicom_series import (
    PATIENT_ID,
    PATIENT_NAME,
    multiframe_dataset,
    oriented_affine,
    quantised,
    series_datasets,
    to_bytes,
)

SEG_CLASS, PM_CLASS = "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.30"


def _scan(kind, seed=11):
    image, _ = synthetic_case((20, 18, 16), seed)
    return quantised(Volume(image.array, oriented_affine(kind)))


def _upload(orthanc, datasets):
    client = DICOMwebClient(orthanc.dicomweb)
    client.store_instances([pydicom.dcmread(io.BytesIO(to_bytes(ds))) for ds in datasets])
    return client


def _result_objects(client, study, result):
    """The SEG and the parametric maps the server stored, fetched back from Orthanc by their UIDs."""
    seg = client.retrieve_series(study, result["segmentation"]["series"])
    maps = {m["name"]: client.retrieve_series(study, m["series"]) for m in result["maps"]}
    return seg, maps


@pytest.fixture(scope="module")
def backend(pacs_server):
    client = RemoteBackend(pacs_server.url, pacs_server.token)
    yield client
    client.close()


def test_series_predicted_by_uid_lands_in_orthanc_referencing_the_source(orthanc, pacs_server, backend):
    volume = _scan("oblique")
    datasets = series_datasets(volume, descending=True)
    client = _upload(orthanc, datasets)
    study, series = str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)

    studies = backend.pacs_studies()
    assert study in [s["StudyInstanceUID"] for s in studies]
    listed = backend.pacs_series(study)
    assert [s["SeriesInstanceUID"] for s in listed] == [series] and listed[0]["NumberOfSeriesRelatedInstances"] == 16

    result = backend.predict_pacs_series(study, series, "tiny_mcd", options={"float32": True})
    assert result["stored"] and result["prediction"]["model"] == "tiny_mcd"
    stored = {s["SeriesInstanceUID"]: s for s in backend.pacs_series(study)}
    assert stored[result["segmentation"]["series"]]["Modality"] == "SEG"
    assert {m["name"] for m in result["maps"]} == set(result["prediction"]["outputs"]) - {"mask", "probabilities"}

    source = series_from_datasets(client.retrieve_series(study, series))
    [seg], maps = _result_objects(client, study, result)
    assert seg.SOPClassUID == SEG_CLASS and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series
    assert "tiny_mcd v1 mc_dropout" in seg.ContentDescription
    pid = result["prediction"]["id"]
    mask = volume_from_bytes(backend.output(pid, "mask"))
    from_seg = segmentation_to_volume(seg, source)
    np.testing.assert_array_equal(from_seg.array, np.asarray(mask.dataobj))
    np.testing.assert_allclose(from_seg.affine, mask.affine, atol=1e-4)
    assert len(np.unique(from_seg.array)) >= 2  # the tiny model finds foreground: the comparison is not empty
    for name, [pm] in maps.items():
        assert pm.SOPClassUID == PM_CLASS and pm.ReferencedSeriesSequence[0].SeriesInstanceUID == series
        assert name in pm.ContentDescription
        expected = float_map_from_bytes(backend.output(pid, name, dtype="float32"))
        np.testing.assert_array_equal(parametric_map_to_volume(pm, source).array, expected.array)
    for text in (str(studies), str(listed), str(result), pacs_server.log()):
        assert "Janeprivate" not in text and PATIENT_ID not in text and PATIENT_NAME not in text


#: every orientation in both instance orders, plus one enhanced multi-frame series (its frame order is what it adds)
LAYOUTS = [(k, o) for k in ("axial", "sagittal", "coronal", "oblique") for o in ("ascending", "descending")]


@pytest.mark.parametrize(("kind", "layout"), [*LAYOUTS, ("oblique", "multiframe")])
def test_mask_from_orthanc_lands_on_the_voxels_of_the_nifti_path(orthanc, backend, kind, layout):
    volume = _scan(kind)
    nifti_mask = backend.predict(volume, "tiny_det").prediction.mask
    assert not np.array_equal(nifti_mask.array, nifti_mask.array[:, :, ::-1])  # a slice-order error would show
    if layout == "multiframe":
        datasets = [multiframe_dataset(volume, descending=True)]
    else:
        datasets = series_datasets(volume, descending=layout == "descending")
    client = _upload(orthanc, datasets)
    study, series = str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)
    result = backend.predict_pacs_series(study, series, "tiny_det")
    source = series_from_datasets(client.retrieve_series(study, series))
    np.testing.assert_allclose(source.volume.affine, volume.affine, atol=1e-4)
    [seg], _ = _result_objects(client, study, result)
    from_seg = segmentation_to_volume(seg, source)
    np.testing.assert_array_equal(from_seg.array, nifti_mask.array)
    np.testing.assert_allclose(from_seg.affine, nifti_mask.affine, atol=1e-4)


def test_pacs_errors_are_clear(orthanc, backend):
    with pytest.raises(NotFoundError, match="not found in the PACS"):
        backend.predict_pacs_series("1.2.3.999", "1.2.3.998", "tiny_det")
    with pytest.raises(BadRequest, match="DICOM UID"):
        backend.pacs_series("1.2.abc")
    with pytest.raises(NotFoundError):
        backend.pacs_series("../../etc")  # never reaches another route
    with pytest.raises(BadRequest, match="unknown field"):
        backend._json("POST", "/v1/pacs/predictions", json={"study": "1.2", "series": "1.3", "model": "x", "y": 1})


def test_server_without_a_pacs_says_how_to_configure_one(uqseg_server):
    client = RemoteBackend(uqseg_server.url, uqseg_server.token)
    with pytest.raises(BadRequest, match="--dicomweb"):
        client.pacs_studies()
    client.close()


def test_zip_upload_predicts_like_the_nifti(uqseg_server):
    from napari_uqseg.testing.dicom_series import zip_bytes

    volume = _scan("coronal")
    client = RemoteBackend(uqseg_server.url, uqseg_server.token)
    uploaded = client.upload_dicom_series(zip_bytes(series_datasets(volume, descending=True)))
    np.testing.assert_allclose(uploaded["affine"], volume.affine, atol=1e-4)
    summary = client._json("POST", "/v1/predictions", json={"image": uploaded["image"], "model": "tiny_det"})
    from_zip = volume_from_bytes(client.output(summary["id"], "mask"))
    np.testing.assert_array_equal(
        np.asarray(from_zip.dataobj), client.predict(volume, "tiny_det").prediction.mask.array
    )
    client.close()


def test_unreachable_pacs_is_a_502_that_says_so(tiny_models, tmp_path):
    from napari_uqseg.client.errors import ServerError
    from napari_uqseg.testing.server import free_port, start_server

    closed = f"http://127.0.0.1:{free_port()}/dicom-web"
    handle = start_server(tmp_path / "data", {}, extra_args=["--dicomweb", closed])
    try:
        client = RemoteBackend(handle.url, handle.token)
        with pytest.raises(ServerError, match="cannot reach the PACS") as caught:
            client.pacs_studies()
        assert caught.value.status == 502
        client.close()
    finally:
        handle.stop()


def test_triage_ranks_the_series_of_a_study_list_and_reports_broken_ones(orthanc, backend):
    good = series_datasets(_scan("axial"))
    other = series_datasets(_scan("coronal", seed=12), study_uid=str(good[0].StudyInstanceUID))
    broken = series_datasets(_scan("sagittal"))
    broken = broken[:5] + broken[6:]  # a slice missing
    second_study = series_datasets(_scan("oblique", seed=13))
    client = _upload(orthanc, good + other + broken + second_study)
    studies = [str(good[0].StudyInstanceUID), str(broken[0].StudyInstanceUID), str(second_study[0].StudyInstanceUID)]

    rows = backend.triage_pacs_studies(studies, "tiny_mcd")
    scored = [r for r in rows if "case_score" in r]
    assert len(scored) == 3 and len(rows) == 4
    assert [r["case_score"] for r in scored] == sorted((r["case_score"] for r in scored), reverse=True)
    assert "missing" in rows[-1]["error"] and rows[-1]["series"] == str(broken[0].SeriesInstanceUID)
    modalities = [s["00080060"]["Value"][0] for s in client.search_for_series(studies[0])]
    assert modalities.count("SEG") == 2  # one SEG per predicted series, stored in the study
    again = backend.triage_pacs_studies(studies[:1], "tiny_mcd", store=False)
    assert len(again) == 2  # the stored SEG and maps are not scans: not triaged again
    with pytest.raises(NotFoundError):
        backend.triage_pacs_studies(studies[:1], "no_such_model")
    with pytest.raises(BadRequest, match="list of 1 to 50"):
        backend.triage_pacs_studies([], "tiny_mcd")
