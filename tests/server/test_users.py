"""Per-user tokens and roles on a real server; the audit log names who did what."""

from __future__ import annotations

import base64
import gzip
import time

import nibabel as nib
import numpy as np
import pytest
import requests

from napari_uqseg.cli import main
from napari_uqseg.server.users import CACHE_S
from napari_uqseg.testing.server import start_server, upload_and_predict

TIMEOUT = (5, 120)


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    handle = start_server(tmp_path_factory.mktemp("users") / "data", {"tiny_det": tiny_models["tiny_det"]})
    yield handle
    handle.stop()


def add_user(server, name: str, role: str, capsys) -> str:
    capsys.readouterr()
    assert main(["users", "--data-dir", str(server.data_dir), "add", name, "--role", role]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def client(server, token: str):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return lambda method, path, **kw: session.request(method, server.url + path, timeout=TIMEOUT, **kw)


def correct(http) -> str:
    _, label, _, summary = upload_and_predict(http, seed=11, uploaded=(200, 201))
    raw = gzip.compress(nib.Nifti1Image(label.array.astype(np.uint8), label.affine).to_bytes())
    r = http("POST", "/v1/corrections", json={"prediction": summary["id"], "label": base64.b64encode(raw).decode()})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_reader_is_refused_maintainer_actions(server, capsys):
    reader = client(server, add_user(server, "rita", "reader", capsys))
    correct(reader)  # a reader predicts and corrects
    for path, body in [
        ("/v1/models/tiny_det/promote", {"version": "v1"}),
        ("/v1/models/tiny_det/rollback", None),
        ("/v1/jobs", {"kind": "train", "model": "new", "params": {"method": "deterministic", "dataset": "x"}}),
    ]:
        r = reader("POST", path, json=body)
        assert r.status_code == 403, (path, r.text)
        assert "maintainer" in r.json()["error"]["message"]
    assert reader("GET", "/v1/audit").status_code == 403


def test_audit_names_who_corrected_and_who_promoted(server, capsys):
    reader = client(server, add_user(server, "ramon", "reader", capsys))
    maintainer = client(server, add_user(server, "mei", "maintainer", capsys))
    cid = correct(reader)
    assert maintainer("POST", "/v1/models/tiny_det/promote", json={"version": "v1"}).status_code == 200
    owner = client(server, server.token)  # the server's own token is the maintainer "owner"'s
    assert owner("POST", "/v1/models/tiny_det/rollback").status_code == 200
    log = maintainer("GET", "/v1/audit").json()
    assert {"actor": "ramon", "action": "correction", "target": cid} in [
        {k: e[k] for k in ("actor", "action", "target")} for e in log
    ]
    assert [e["actor"] for e in log if e["action"] == "promote"][-1] == "mei"
    assert [e["actor"] for e in log if e["action"] == "rollback"][-1] == "owner"
    assert [e["actor"] for e in log if e["action"] == "add_version"][0] == "admin"  # --import-model


def test_revoked_token_is_refused(server, capsys):
    token = add_user(server, "temp", "reader", capsys)
    http = client(server, token)
    assert http("GET", "/v1/models").status_code == 200
    assert main(["users", "--data-dir", str(server.data_dir), "revoke", "temp"]) == 0
    time.sleep(CACHE_S + 0.5)  # the server caches a token's user for CACHE_S seconds
    assert http("GET", "/v1/models").status_code == 401


def test_users_list_shows_roles_never_tokens(server, capsys):
    token = add_user(server, "lister", "reader", capsys)
    assert main(["users", "--data-dir", str(server.data_dir), "list"]) == 0
    out = capsys.readouterr().out
    assert "lister" in out and "reader" in out and "owner" in out and token not in out
