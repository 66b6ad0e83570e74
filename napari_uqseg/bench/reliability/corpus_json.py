"""The JSON half of the bad-request corpus: predictions, corrections, jobs, model actions, ids and content types.

Cases refer to one real uploaded image (``sha``) and one real prediction of it (``pid``, shape ``shape``).
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

import numpy as np

from napari_uqseg.bench.reliability.corpus import BadRequest, label_b64, nifti_raw

PATH_LIKE = ("../x", "..", "/etc/passwd", "a/b", "a\\b", "%2e%2e", "x" * 200, "", " ", "\u00e9t\u00e9", "a.b", "nul\0l")
JSON_HEADERS = {"Content-Type": "application/json"}


def _raw_json(name: str, path: str, text: bytes) -> BadRequest:
    return BadRequest(name, "POST", path, body=text, headers=JSON_HEADERS)


def prediction_cases(sha: str) -> list[BadRequest]:
    """Bad ``POST /v1/predictions`` bodies."""
    cases = [
        _raw_json(f"predict: invalid json {i}", "/v1/predictions", text)
        for i, text in enumerate([b"{", b"{not json", b"[1, 2]", b'"string"', b"null", b"1e999999", b"\xff\xfe"])
    ]
    bodies: dict[str, Any] = {
        "missing image": {"model": "tiny_det"},
        "missing model": {"image": sha},
        "image int": {"image": 5, "model": "tiny_det"},
        "image list": {"image": [sha], "model": "tiny_det"},
        "model null": {"image": sha, "model": None},
        "unknown field": {"image": sha, "model": "tiny_det", "colour": 1},
        "version int": {"image": sha, "model": "tiny_det", "version": 2},
        "version word": {"image": sha, "model": "tiny_det", "version": "latest"},
        "unknown version": {"image": sha, "model": "tiny_det", "version": "v999"},
        "unknown model": {"image": sha, "model": "no_such_model"},
        "unknown image": {"image": "f" * 64, "model": "tiny_det"},
        "options list": {"image": sha, "model": "tiny_det", "options": [1]},
    }
    options: dict[str, Any] = {
        "overlap -1": {"overlap": -1},
        "overlap 2": {"overlap": 2},
        "overlap text": {"overlap": "x"},
        "sw_batch_size 0": {"sw_batch_size": 0},
        "sw_batch_size huge": {"sw_batch_size": 10**9},
        "sw_batch_size float": {"sw_batch_size": 1.5},
        "axis 3": {"axis": 3},
        "axis bool": {"axis": True},
        "review_map path": {"review_map": "../x"},
        "review_map unknown": {"review_map": "mutual_information"},
        "float32 text": {"float32": "yes"},
        "unknown option": {"samples": 1000},
    }
    bodies.update({f"option {k}": {"image": sha, "model": "tiny_det", "options": v} for k, v in options.items()})
    for i, bad in enumerate(PATH_LIKE):
        bodies[f"image id path-like {i}"] = {"image": bad, "model": "tiny_det"}
        bodies[f"model path-like {i}"] = {"image": sha, "model": bad}
    cases += [BadRequest(f"predict: {k}", "POST", "/v1/predictions", json=v) for k, v in bodies.items()]
    nan = b'{"image": "' + sha.encode() + b'", "model": "tiny_det", "options": {"overlap": NaN}}'
    cases.append(_raw_json("predict: option overlap NaN", "/v1/predictions", nan))
    return cases


def correction_cases(pid: str, shape: tuple[int, ...], affine: np.ndarray) -> list[BadRequest]:
    """Bad ``POST /v1/corrections`` bodies for prediction ``pid`` of an image of ``shape``."""
    good = np.zeros(shape, np.uint8)
    good[2:-2, 2:-2, 2:-2] = 1
    float_labels = good.astype(np.float32) + 0.5
    nan_labels = good.astype(np.float32)
    nan_labels[0, 0, 0] = np.nan
    negative = good.astype(np.int16)
    negative[0, 0, 0] = -1
    wide = good.astype(np.int16) * 256
    labels = {
        "not base64": "@@@",
        "base64 of garbage": base64.b64encode(b"garbage").decode(),
        "base64 of header-only 800^3": base64.b64encode(gzip.compress(nifti_raw(good)[:352])).decode(),
        "wrong shape": label_b64(good[:-1]),
        "4-D label": label_b64(np.stack([good, good], axis=-1)),
        "other affine": label_b64(good, np.diag([2.0, 2.0, 2.0, 1.0])),
        "all background": label_b64(np.zeros_like(good)),
        "fractional labels": label_b64(float_labels, affine),
        "NaN label": label_b64(nan_labels, affine),
        "negative label": label_b64(negative, affine),
        "label 256": label_b64(wide, affine),
        "label 7 (outside classes)": label_b64(good * 7, affine),
        "complex label": label_b64(good.astype(np.complex64), affine),
        "label of more voxels than the image": label_b64(np.ones(tuple(s * 2 for s in shape), np.uint8), affine),
    }
    bodies: dict[str, Any] = {k: {"prediction": pid, "label": v} for k, v in labels.items()}
    bodies["missing label"] = {"prediction": pid}
    bodies["label int"] = {"prediction": pid, "label": 5}
    bodies["review list"] = {"prediction": pid, "label": label_b64(good, affine), "review": [1]}
    bodies["client_key int"] = {"prediction": pid, "label": label_b64(good, affine), "client_key": 5}
    bodies["unknown prediction"] = {"prediction": "c" * 32, "label": label_b64(good, affine)}
    for i, bad in enumerate(PATH_LIKE):
        bodies[f"prediction path-like {i}"] = {"prediction": bad, "label": label_b64(good, affine)}
        bodies[f"client_key path-like {i}"] = {"prediction": pid, "label": label_b64(good, affine), "client_key": bad}
    return [BadRequest(f"correct: {k}", "POST", "/v1/corrections", json=v) for k, v in bodies.items()]


def job_cases() -> list[BadRequest]:
    """Bad ``POST /v1/jobs`` bodies."""
    ft = {"kind": "finetune", "model": "tiny_det"}
    bodies: dict[str, Any] = {
        "unknown kind": {"kind": "mine_bitcoin", "model": "tiny_det"},
        "kind int": {"kind": 1, "model": "tiny_det"},
        "missing model": {"kind": "finetune"},
        "unknown model": {"kind": "finetune", "model": "nope"},
        "params list": {**ft, "params": [1]},
        "unknown param": {**ft, "params": {"lr": 1}},
        "options iterations text": {**ft, "params": {"options": {"iterations": "5"}}},
        "options lr_factor text": {**ft, "params": {"options": {"lr_factor": "fast"}}},
        "options iterations 0": {**ft, "params": {"options": {"iterations": 0}}},
        "options iterations huge": {**ft, "params": {"options": {"iterations": 10**12}}},
        "options unknown": {**ft, "params": {"options": {"epochs": 3}}},
        "options list": {**ft, "params": {"options": [1]}},
        "corrections empty": {**ft, "params": {"corrections": []}},
        "corrections path-like": {**ft, "params": {"corrections": ["../x"]}},
        "corrections unknown": {**ft, "params": {"corrections": ["d" * 32]}},
        "version unknown": {**ft, "params": {"version": "v42"}},
        "version path-like": {**ft, "params": {"version": "../v1"}},
        "train unknown method": {"kind": "train", "model": "n", "params": {"method": "magic", "dataset": "x"}},
        "train path-like dataset": {
            "kind": "train",
            "model": "n",
            "params": {"method": "deterministic", "dataset": ".."},
        },
        "client_key path-like": {**ft, "client_key": "../k"},
    }
    return [BadRequest(f"job: {k}", "POST", "/v1/jobs", json=v) for k, v in bodies.items()]


def route_cases(json_limit: int) -> list[BadRequest]:
    """Bad ids in URLs, model actions, content types and an oversized JSON body."""
    cases = []
    for i, bad in enumerate(("0123", "g" * 32, "..", "..%2F..%2Fledger.sqlite", "%00", "a" * 33, "-" * 32)):
        cases.append(BadRequest(f"get: prediction id {i}", "GET", f"/v1/predictions/{bad}"))
        cases.append(BadRequest(f"get: job id {i}", "GET", f"/v1/jobs/{bad}"))
        cases.append(BadRequest(f"get: output of {i}", "GET", f"/v1/predictions/{bad}/outputs/mask"))
    cases += [
        BadRequest("get: output name path-like", "GET", "/v1/predictions/{pid}/outputs/..%2F..%2Fledger.sqlite"),
        BadRequest("get: output dtype float64", "GET", "/v1/predictions/{pid}/outputs/mask?dtype=float64"),
        BadRequest("get: unknown output", "GET", "/v1/predictions/{pid}/outputs/no_such_map"),
        BadRequest("get: unknown model", "GET", "/v1/models/no_such_model"),
        BadRequest("get: job wait text", "GET", "/v1/jobs/" + "b" * 32 + "?wait=abc"),
        BadRequest("promote: missing version", "POST", "/v1/models/tiny_det/promote", json={}),
        BadRequest("promote: unknown version", "POST", "/v1/models/tiny_det/promote", json={"version": "v9"}),
        BadRequest("promote: path-like version", "POST", "/v1/models/tiny_det/promote", json={"version": "../v1"}),
        BadRequest("rollback: nothing earlier", "POST", "/v1/models/tiny_det/rollback"),
        BadRequest("rollback: unknown model", "POST", "/v1/models/nope/rollback"),
        BadRequest("cancel: unknown job", "POST", "/v1/jobs/" + "d" * 32 + "/cancel"),
        BadRequest(
            "type: text/plain json", "POST", "/v1/predictions", body=b"{}", headers={"Content-Type": "text/plain"}
        ),
        BadRequest(
            "type: form",
            "POST",
            "/v1/jobs",
            body=b"kind=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        BadRequest("type: untyped body", "POST", "/v1/corrections", body=b'{"prediction": "x"}'),
        BadRequest(
            "origin: cross-site", "POST", "/v1/models/tiny_det/rollback", headers={"Origin": "https://evil.example"}
        ),
        BadRequest("host: rebinding", "GET", "/v1/models", headers={"Host": "evil.example"}),
        _raw_json("json: oversized", "/v1/predictions", b'{"x": "' + b"a" * (json_limit + 1) + b'"}'),
        _raw_json("json: deeply nested", "/v1/predictions", b"[" * 100_000 + b"]" * 100_000),
        BadRequest("auth: wrong token", "GET", "/v1/models", headers={"Authorization": "Bearer wrong-token"}),
        BadRequest("auth: no bearer", "GET", "/v1/models", headers={"Authorization": "Basic abc"}),
        BadRequest("route: unknown", "GET", "/v1/no/such/route"),
        BadRequest("route: wrong method", "DELETE", "/v1/models"),
    ]
    return cases
