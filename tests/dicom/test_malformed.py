"""Malformed DICOM: a clear InputError from the reader, HTTP 400 from the server, exit code 2 from the CLI.

Every message is also checked for the patient name and ID the synthetic series carry: they must never appear.
"""

import copy
import io
import zipfile

import numpy as np
import pytest
import requests

from napari_uqseg.core.dicom_series import read_dicom_zip
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.dicom_series import (
    PATIENT_ID,
    PATIENT_NAME,
    multiframe_dataset,
    oriented_affine,
    quantised,
    series_datasets,
    to_bytes,
    zip_bytes,
)


def _slices(count=5):
    raw = np.random.default_rng(2).normal(0, 200, (6, 5, count)).astype(np.float32)
    return series_datasets(quantised(Volume(raw, oriented_affine("axial"))))


def _move(index, delta):
    def build():
        slices = _slices()
        slices[index].ImagePositionPatient = list(np.add(slices[index].ImagePositionPatient, delta))
        return zip_bytes(slices)

    return build


def _edit(edit, index=1):
    def build():
        slices = _slices()
        edit(slices[index])
        return zip_bytes(slices)

    return build


def _two_series():
    first, second = _slices(), _slices()
    return zip_bytes(first + second)


def _drop_middle():
    slices = _slices(6)
    return zip_bytes(slices[:3] + slices[4:])


def _other_size(ds):
    ds.Rows = 4
    ds.PixelData = ds.PixelData[: 4 * ds.Columns * 2]


def _compressed(ds):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encapsulate([b"\xff\xd8 not really a JPEG stream \xff\xd9"])
    ds["PixelData"].VR = "OB"


def _colour(ds):
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(ds.Rows * ds.Columns * 3)


def _truncated():
    slices = _slices()
    members = {f"IM{n}.dcm": to_bytes(ds) for n, ds in enumerate(slices)}
    members["IM2.dcm"] = members["IM2.dcm"][: len(members["IM2.dcm"]) - 40]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _two_multiframes():
    slices = _slices()
    volume = quantised(Volume(np.zeros((6, 5, 5), np.float32), oriented_affine("axial")))
    first = multiframe_dataset(volume)
    second = copy.deepcopy(first)
    second.SOPInstanceUID = "1.2.3.4.5.6.7"
    second.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7"
    del slices
    return zip_bytes([first, second])


def _drop(keyword):
    return _edit(lambda ds: delattr(ds, keyword))


#: name -> (zip body builder, what the message must say)
CASES = {
    "not-a-zip": (lambda: b"PK\x03\x04 this is not really a zip archive", "not a readable zip"),
    "no-dicom-files": (lambda: zip_bytes([], {"README.txt": b"hello"}), "no DICOM image"),
    "no-pixel-data": (lambda: zip_bytes([_strip_pixels(ds) for ds in _slices()]), "no DICOM image"),
    "two-series": (_two_series, "2 different series"),
    "missing-slice": (_drop_middle, "1 slice(s) missing"),
    "non-uniform-spacing": (_move(2, (0, 0, 0.5)), "non-uniform slice spacing"),
    "duplicate-position": (_move(2, (0, 0, -1.6)), "share the position"),
    "orientation-differs": (
        _edit(lambda ds: setattr(ds, "ImageOrientationPatient", [0, 1, 0, 1, 0, 0])),
        "orientation",
    ),
    "size-differs": (_edit(_other_size), "different sizes"),
    "no-position": (_drop("ImagePositionPatient"), "ImagePositionPatient is missing"),
    "no-orientation": (_drop("ImageOrientationPatient"), "ImageOrientationPatient is missing"),
    "no-pixel-spacing": (_drop("PixelSpacing"), "PixelSpacing is missing"),
    "oblique-not-orthogonal": (
        _edit(lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0.6, 0.8, 0])),
        "not orthogonal",
    ),
    "secondary-capture": (
        _edit(lambda ds: setattr(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.7")),
        "secondary capture",
    ),
    "undecodable-compression": (_edit(_compressed), "cannot be decoded here"),
    "colour": (_edit(_colour), "colour images"),
    "single-slice": (lambda: zip_bytes(_slices()[:1]), "at least 2"),
    "truncated-file": (_truncated, "damaged"),
    "pixel-data-short": (_edit(lambda ds: setattr(ds, "PixelData", ds.PixelData[:10])), "damaged"),
    "sheared-stack": (_move(3, (0.8, 0, 0)), "not stacked along their normal"),
    "two-multiframes": (_two_multiframes, "multi-frame instances"),
}


def _strip_pixels(ds):
    del ds.PixelData
    return ds


def _no_phi(text):
    assert PATIENT_NAME.split("^")[0] not in text and "Janeprivate" not in text and PATIENT_ID not in text


def test_there_are_at_least_15_cases():
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", sorted(CASES))
def test_reader_names_the_problem(case):
    build, expected = CASES[case]
    with pytest.raises(InputError) as caught:
        read_dicom_zip(build(), "upload")
    assert expected in str(caught.value)
    _no_phi(str(caught.value))


def test_zip_bomb_is_refused_before_unpacking():
    body = zip_bytes(_slices())
    with pytest.raises(InputError, match="more than the limit"):
        read_dicom_zip(body, "upload", max_bytes=1000)


@pytest.mark.parametrize("case", sorted(CASES))
def test_server_answers_400_with_the_problem(uqseg_server, case):
    build, expected = CASES[case]
    response = requests.post(
        f"{uqseg_server.url}/v1/images/dicom",
        data=build(),
        headers={"Authorization": f"Bearer {uqseg_server.token}", "Content-Type": "application/zip"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_input" and expected in error["message"]
    _no_phi(response.text)


def test_server_log_never_printed_patient_identity(uqseg_server):
    response = requests.post(
        f"{uqseg_server.url}/v1/images/dicom",
        data=zip_bytes(_slices()),
        headers={"Authorization": f"Bearer {uqseg_server.token}"},
        timeout=60,
    )
    assert response.status_code in (200, 201), response.text
    _no_phi(response.text)
    _no_phi(uqseg_server.log())


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_exits_2_with_the_problem(tiny_models, tmp_path, capsys, case):
    from napari_uqseg.cli import main

    build, expected = CASES[case]
    (tmp_path / "series.zip").write_bytes(build())
    code = main(
        [
            "predict",
            "--model",
            str(tiny_models["tiny_det"]),
            "--image",
            str(tmp_path / "series.zip"),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "uqseg predict: error:" in err and expected in err
    assert "Traceback" not in err
    _no_phi(err)
    assert not (tmp_path / "out").exists()
