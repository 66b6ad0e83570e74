"""Bad input gets a 4xx with a message, never a 5xx or a hang (real server, raw HTTP)."""

from __future__ import annotations

import base64
import gzip
import hashlib

import nibabel as nib
import numpy as np
import pytest
import requests

from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.server import start_server, upload_and_predict

TIMEOUT = (5, 60)


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    limits = ["--max-upload-mb", "1", "--max-json-mb", "1", "--max-voxels", "40000"]
    handle = start_server(tmp_path_factory.mktemp("bad") / "data", tiny_models, extra_args=limits)
    yield handle
    handle.stop()


def nifti(array: np.ndarray, affine: np.ndarray | None = None, compress: bool = True) -> bytes:
    raw = nib.Nifti1Image(array, np.eye(4) if affine is None else affine).to_bytes()
    return gzip.compress(raw) if compress else raw


def put(http, data: bytes, sha: str | None = None) -> requests.Response:
    return http("PUT", f"/v1/images/{sha or hashlib.sha256(data).hexdigest()}", data=data)


@pytest.fixture(scope="module")
def case(http):
    """An uploaded image and a prediction of it: ``(image, label, sha, prediction_id)``."""
    image, label, sha, summary = upload_and_predict(http, seed=31)
    return image, label, sha, summary["id"]


def label_b64(array: np.ndarray, affine: np.ndarray) -> str:
    return base64.b64encode(nifti(array.astype(np.uint8), affine)).decode()


def valid_label(case) -> np.ndarray:
    return case[1].array


GOOD_IMAGE = np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32)
NAN_IMAGE = GOOD_IMAGE.copy()
NAN_IMAGE[3, 4, 5] = np.nan
INF_IMAGE = GOOD_IMAGE.copy()
INF_IMAGE[0, 0, 0] = np.inf

UPLOADS = {
    "garbage bytes": b"this is not a nifti file at all" * 10,
    "empty body": b"",
    "truncated gzip nifti": nifti(GOOD_IMAGE)[:200],
    "truncated raw nifti": nifti(GOOD_IMAGE, compress=False)[:1000],
    "gzip of garbage": gzip.compress(b"\x00garbage" * 100),
    "2-D image": nifti(GOOD_IMAGE[0]),
    "4-D image": nifti(np.stack([GOOD_IMAGE] * 3, axis=-1)),
    "NaN voxel": nifti(NAN_IMAGE),
    "Inf voxel": nifti(INF_IMAGE),
    "too many voxels": nifti(np.zeros((40, 40, 40), np.float32)),
}


@pytest.mark.parametrize("name", list(UPLOADS))
def test_bad_upload(http, name):
    r = put(http, UPLOADS[name])
    assert r.status_code == 400, (name, r.status_code, r.text)
    assert r.json()["error"]["message"]


def test_sha_mismatch(http):
    r = put(http, nifti(GOOD_IMAGE), sha="0" * 64)
    assert r.status_code == 400 and "sha256" in r.json()["error"]["message"]


@pytest.mark.parametrize("sha", ["ABC", "g" * 64, "0" * 63, "..", "..%2F..%2Fledger.sqlite", "%2E%2E"])
def test_malformed_image_ids(http, sha):
    r = http("PUT", f"/v1/images/{sha}", data=nifti(GOOD_IMAGE))
    assert 400 <= r.status_code < 500, (sha, r.status_code)


def test_oversized_upload_is_413(http):
    r = http("PUT", "/v1/images/" + "0" * 64, data=b"\0" * (2 * 1024 * 1024))
    assert r.status_code == 413


def test_oversized_json_is_413(http):
    r = http(
        "POST",
        "/v1/predictions",
        data=b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413


PREDICT_BODIES = {
    "invalid json": (b"{not json", 400),
    "json array": (b"[1, 2]", 400),
    "missing image": ({"model": "tiny_det"}, 400),
    "unknown field": ({"image": "0" * 64, "model": "tiny_det", "colour": 1}, 400),
    "image not a string": ({"image": 5, "model": "tiny_det"}, 400),
    "unknown image": ({"image": "f" * 64, "model": "tiny_det"}, 404),
    "malformed image": ({"image": "../../etc/passwd", "model": "tiny_det"}, 400),
}


@pytest.mark.parametrize("name", list(PREDICT_BODIES))
def test_bad_prediction_body(http, name):
    body, status = PREDICT_BODIES[name]
    kw = {"data": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, bytes) else {"json": body}
    r = http("POST", "/v1/predictions", **kw)
    assert r.status_code == status, (name, r.status_code, r.text)
    assert r.json()["error"]["message"]


PREDICT_ARGS = {
    "unknown model": ({"model": "no_such_model"}, 404),
    "path-like model": ({"model": "../models"}, 400),
    "unknown version": ({"model": "tiny_det", "version": "v99"}, 404),
    "malformed version": ({"model": "tiny_det", "version": "latest"}, 400),
    "unknown option": ({"model": "tiny_det", "options": {"samples": 100}}, 400),
    "overlap out of range": ({"model": "tiny_det", "options": {"overlap": 5}}, 400),
    "axis out of range": ({"model": "tiny_det", "options": {"axis": 7}}, 400),
    "review map of another method": ({"model": "tiny_det", "options": {"review_map": "mutual_information"}}, 400),
    "options not an object": ({"model": "tiny_det", "options": [1]}, 400),
}


@pytest.mark.parametrize("name", list(PREDICT_ARGS))
def test_bad_prediction_arguments(http, case, name):
    args, status = PREDICT_ARGS[name]
    r = http("POST", "/v1/predictions", json={"image": case[2], **args})
    assert r.status_code == status, (name, r.status_code, r.text)
    assert r.json()["error"]["message"]


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_bad_token_is_401(server, token):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    r = requests.get(f"{server.url}/v1/capabilities", headers=headers, timeout=TIMEOUT)
    assert r.status_code == 401 and "token" in r.json()["error"]["message"]


def test_health_needs_no_token(server):
    assert requests.get(f"{server.url}/v1/health", timeout=TIMEOUT).json()["protocol"] == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/predictions/{pid}/outputs/no_such_map", 404),
        ("/v1/predictions/{pid}/outputs/..%2F..%2Fledger.sqlite", (400, 404)),  # %2F is decoded: no route matches
        ("/v1/predictions/{pid}/outputs/entropy?dtype=float64", 400),
        ("/v1/predictions/{pid}/outputs/entropy?dtype=float32", 400),  # float32 not kept
        ("/v1/predictions/0123", 400),
        ("/v1/predictions/" + "a" * 32, 404),
        ("/v1/jobs/not-an-id", 400),
        ("/v1/jobs/" + "b" * 32, 404),
        ("/v1/models/no_such_model", 404),
        ("/v1/models/..%2F..%2Fetc", (400, 404)),
        ("/v1/no/such/route", 404),
    ],
)
def test_bad_get(http, case, path, status):
    r = http("GET", path.format(pid=case[3]))
    assert r.status_code in (status if isinstance(status, tuple) else (status,)), (path, r.status_code, r.text)
    assert r.json()["error"]["message"]


def correction_cases(case):
    image, label, _, pid = case
    lab = label.array
    out_of_range = lab.copy()
    out_of_range[0, 0, 0] = 7
    return {
        "invalid base64": ({"prediction": pid, "label": "@@@"}, 400),
        "garbage label": ({"prediction": pid, "label": base64.b64encode(b"garbage").decode()}, 400),
        "wrong shape": ({"prediction": pid, "label": label_b64(lab[:10], image.affine)}, 400),
        "wrong affine": ({"prediction": pid, "label": label_b64(lab, np.diag([2.0, 2, 2, 1]))}, 400),
        "label outside classes": ({"prediction": pid, "label": label_b64(out_of_range, image.affine)}, 400),
        "all background": ({"prediction": pid, "label": label_b64(np.zeros_like(lab), image.affine)}, 400),
        "unknown prediction": ({"prediction": "c" * 32, "label": label_b64(lab, image.affine)}, 404),
        "path-like prediction": ({"prediction": "../x", "label": label_b64(lab, image.affine)}, 400),
        "path-like client key": ({"prediction": pid, "label": label_b64(lab, image.affine), "client_key": "../k"}, 400),
        "missing label": ({"prediction": pid}, 400),
    }


@pytest.mark.parametrize(
    "name",
    [
        "invalid base64",
        "garbage label",
        "wrong shape",
        "wrong affine",
        "label outside classes",
        "all background",
        "unknown prediction",
        "path-like prediction",
        "path-like client key",
        "missing label",
    ],
)
def test_bad_correction(http, case, name):
    body, status = correction_cases(case)[name]
    r = http("POST", "/v1/corrections", json=body)
    assert r.status_code == status, (name, r.status_code, r.text)
    assert r.json()["error"]["message"]


JOBS = {
    "unknown kind": ({"kind": "mine_bitcoin", "model": "tiny_det"}, 400),
    "unknown model": ({"kind": "finetune", "model": "nope"}, 404),
    "no corrections yet": ({"kind": "finetune", "model": "tiny_det"}, 400),
    "unknown param": ({"kind": "finetune", "model": "tiny_det", "params": {"lr": 1}}, 400),
    "malformed correction ids": ({"kind": "evaluate", "model": "tiny_det", "params": {"corrections": ["../x"]}}, 400),
    "unknown version": ({"kind": "evaluate", "model": "tiny_det", "params": {"version": "v42"}}, 404),
    "path-like dataset": (
        {"kind": "train", "model": "new", "params": {"method": "deterministic", "dataset": "../.."}},
        400,
    ),
    "unknown method": ({"kind": "train", "model": "new", "params": {"method": "magic", "dataset": "x"}}, 400),
    "missing kind": ({"model": "tiny_det"}, 400),
}


@pytest.mark.parametrize("name", list(JOBS))
def test_bad_job(http, name):
    body, status = JOBS[name]
    r = http("POST", "/v1/jobs", json=body)
    assert r.status_code == status, (name, r.status_code, r.text)
    assert r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/models/tiny_det/promote", {"version": "v9"}, 404),
        ("/v1/models/tiny_det/promote", {}, 400),
        ("/v1/models/tiny_det/promote", {"version": "../v1"}, 400),
        ("/v1/models/tiny_det/rollback", None, 400),  # nothing served before v1
        ("/v1/models/nope/rollback", None, 404),
        ("/v1/jobs/" + "d" * 32 + "/cancel", None, 404),
    ],
)
def test_bad_model_and_job_actions(http, path, body, status):
    r = http("POST", path, json=body)
    assert r.status_code == status, (path, r.status_code, r.text)
    assert r.json()["error"]["message"]


def test_server_still_healthy_after_bad_input(http, case):
    image = Volume(GOOD_IMAGE, np.eye(4))
    data = nifti_bytes(image, dtype=np.float32)
    assert put(http, data).status_code in (200, 201)
    assert http("GET", "/v1/capabilities").status_code == 200
