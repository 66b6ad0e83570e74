"""Hostile NIfTI bodies are refused before they cost memory (real server, its RSS measured with psutil)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import zlib

import nibabel as nib
import numpy as np
import pytest
import requests

from napari_uqseg.bench.peak_rss import PeakRSS
from napari_uqseg.testing.server import start_server, upload_and_predict

TIMEOUT = (5, 120)
MAX_GROWTH_MIB = 100
GiB = 1024**3


@pytest.fixture(scope="module")
def unlabelled_model(tiny_models, tmp_path_factory):
    """A copy of ``tiny_det`` whose card names no labels (the server then cannot bound label values by class)."""
    folder = tmp_path_factory.mktemp("unlabelled") / "model"
    shutil.copytree(tiny_models["tiny_det"], folder)
    card = json.loads((folder / "model.json").read_text())
    card["labels"] = {}
    (folder / "model.json").write_text(json.dumps(card))
    return folder


@pytest.fixture(scope="module")
def server(tiny_models, unlabelled_model, tmp_path_factory):
    """A server with the default limits (2 GiB uploads, 512x512x1024 voxels), as a hospital would run it."""
    models = {"tiny_det": tiny_models["tiny_det"], "unlabelled": unlabelled_model}
    handle = start_server(tmp_path_factory.mktemp("limits") / "data", models)
    yield handle
    handle.stop()


def header_only_gzip(shape: tuple[int, ...], dtype=np.float32) -> bytes:
    """A gzip of a NIfTI header declaring ``shape`` and no voxel data at all."""
    img = nib.Nifti1Image(np.zeros((1, 1, 1), dtype), np.eye(4))
    img.header.set_data_shape(shape)
    raw = img.header.binaryblock + b"\0" * 4  # header + extension flag: offset 352, then nothing
    return gzip.compress(raw, compresslevel=9, mtime=0)


@pytest.fixture(scope="session")
def gzip_bomb(tmp_path_factory):
    """A valid 16^3 float32 volume followed by 1.5 GiB of zeros, gzip level 1 (~7 MB); written streaming."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.nii.gz"
    valid = nib.Nifti1Image(np.ones((16, 16, 16), np.float32), np.eye(4)).to_bytes()
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(16 * 1024 * 1024)
    with open(path, "wb") as fh:
        fh.write(compressor.compress(valid))
        for _ in range(int(1.5 * GiB) // len(zeros)):
            fh.write(compressor.compress(zeros))
        fh.write(compressor.flush())
    return path


def put_measured(server, http, data: bytes) -> tuple[requests.Response, PeakRSS]:
    sha = hashlib.sha256(data).hexdigest()
    with PeakRSS(server.process.pid) as rss:
        response = http("PUT", f"/v1/images/{sha}", data=data)
    return response, rss


def test_header_declaring_800_cubed_float32_is_refused_without_allocating(server, http):
    body = header_only_gzip((800, 800, 800))
    assert len(body) < 100
    response, rss = put_measured(server, http, body)
    assert rss.growth_mib < MAX_GROWTH_MIB, f"server RSS grew {rss.growth_mib:.0f} MiB"
    assert response.status_code == 400, response.text
    assert "voxels" in response.json()["error"]["message"]


def test_header_within_the_limit_but_body_too_short_is_refused(server, http):
    response, rss = put_measured(server, http, header_only_gzip((400, 400, 400)))
    assert response.status_code == 400, response.text
    assert "truncated" in response.json()["error"]["message"]
    assert rss.growth_mib < MAX_GROWTH_MIB, f"server RSS grew {rss.growth_mib:.0f} MiB"


def test_gzip_bomb_is_refused_with_bounded_memory(server, http, gzip_bomb):
    data = gzip_bomb.read_bytes()
    assert len(data) < 16 * 1024 * 1024  # a small upload that inflates to 1.5 GiB
    response, rss = put_measured(server, http, data)
    assert rss.growth_mib < MAX_GROWTH_MIB, f"server RSS grew {rss.growth_mib:.0f} MiB"
    assert response.status_code == 400, response.text
    assert "more bytes than the header declares" in response.json()["error"]["message"]


def nifti_gz(array: np.ndarray, affine: np.ndarray | None = None) -> bytes:
    return gzip.compress(nib.Nifti1Image(array, np.eye(4) if affine is None else affine).to_bytes())


def test_complex_image_is_refused(http):
    data = nifti_gz(np.ones((8, 8, 8), np.complex64) * (1 + 2j))
    r = http("PUT", f"/v1/images/{hashlib.sha256(data).hexdigest()}", data=data)
    assert r.status_code == 400 and "complex" in r.json()["error"]["message"], r.text


def test_all_zero_sform_is_refused_at_upload(http):
    array = np.random.default_rng(1).normal(size=(8, 8, 8)).astype(np.float32)
    header = nib.Nifti1Header()
    header.set_data_shape(array.shape)
    header.set_data_dtype(np.float32)
    header.set_sform(np.zeros((4, 4)), code=2)  # written by hand: nibabel's to_bytes would refresh the sform
    header["vox_offset"] = 352
    data = gzip.compress(header.binaryblock + b"\0" * 4 + array.tobytes(order="F"))
    r = http("PUT", f"/v1/images/{hashlib.sha256(data).hexdigest()}", data=data)
    assert r.status_code == 400 and "singular" in r.json()["error"]["message"], r.text


def test_correction_label_256_is_refused_not_stored_as_0(server, http):
    image, label, _, summary = upload_and_predict(http, seed=7, model="unlabelled")
    wide = label.array.astype(np.int16)
    wide[wide == 1] = 256
    body = {"prediction": summary["id"], "label": base64.b64encode(nifti_gz(wide, image.affine)).decode()}
    r = http("POST", "/v1/corrections", json=body)
    assert r.status_code == 400, r.text
    assert "256" in r.json()["error"]["message"]
    assert not list((server.data_dir / "corrections").glob("*.nii.gz"))


def test_server_is_still_healthy(http):
    assert http("GET", "/v1/capabilities").status_code == 200
