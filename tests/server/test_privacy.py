"""Private by default: folder and file modes, client transport rules, browser guards, no internals in errors."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
import requests

from napari_uqseg.client.errors import ConnectionFailed
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core import nifti_io
from napari_uqseg.napari_ui.settings import Settings, save_settings
from napari_uqseg.server.data_dir import SUBFOLDERS, DataDir
from napari_uqseg.testing.server import start_server, upload_and_predict

TIMEOUT = (5, 120)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    data = tmp_path_factory.mktemp("private") / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # an existing, world-readable folder: the server must close it
    handle = start_server(data, {"tiny_det": tiny_models["tiny_det"]})
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def prediction(http):
    return upload_and_predict(http, seed=5)[3]


def test_existing_data_folder_is_closed_at_start(tmp_path):
    root = tmp_path / "data"
    for sub in SUBFOLDERS:
        (root / sub).mkdir(parents=True)
    os.chmod(root, 0o755)
    os.chmod(root / "images", 0o777)
    DataDir(root).ledger.close()
    assert mode(root) == 0o700
    assert all(mode(root / sub) == 0o700 for sub in SUBFOLDERS)


def test_server_files_are_private(server, prediction):
    root = server.data_dir
    assert mode(root) == 0o700
    files = [root / "ledger.sqlite", *root.glob("images/*"), *root.glob("predictions/*/*.nii.gz")]
    assert len(files) >= 3
    assert {mode(p) for p in files} == {0o600}, {str(p): oct(mode(p)) for p in files}
    assert {mode(p) for p in (root / "predictions").iterdir()} == {0o700}
    assert {mode(p) for p in root.glob("models/*/*")} == {0o700}


def test_settings_token_file_is_never_world_readable(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):  # the temporary file's mode at the moment it becomes the settings file
        seen.append(mode(src))
        real_replace(src, dst)

    monkeypatch.setattr(nifti_io.os, "replace", spy)
    path = save_settings(Settings(token="secret-token-value"), tmp_path / "settings.json")
    assert seen == [0o600] and mode(path) == 0o600


def test_client_refuses_plain_http_to_another_machine():
    with pytest.raises(ConnectionFailed, match="in clear"):
        RemoteBackend("http://192.0.2.10:8765", token="t" * 20, check_protocol=False)
    allowed = RemoteBackend("http://192.0.2.10:8765", token="t" * 20, check_protocol=False, allow_http=True)
    assert allowed.session.trust_env  # a remote server may need the site's proxy
    RemoteBackend("https://192.0.2.10:8765", token="t" * 20, check_protocol=False)


def test_client_ignores_proxy_variables_for_loopback(server, monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    backend = RemoteBackend(server.url, server.token)  # checks the protocol: fails if it went to the proxy
    assert backend.health()["protocol"] == 1


@pytest.mark.parametrize(
    ("path", "headers", "data"),
    [
        ("/v1/predictions", {"Content-Type": "text/plain"}, b'{"image": "0", "model": "tiny_det"}'),
        ("/v1/predictions", {"Content-Type": "application/x-www-form-urlencoded"}, b"image=0"),
        ("/v1/models/tiny_det/rollback", {"Content-Type": "text/plain;charset=UTF-8"}, b""),
        ("/v1/jobs", {}, b'{"kind": "train", "model": "x"}'),  # a body without a type (a browser Blob)
    ],
)
def test_json_routes_need_a_json_content_type(http, path, headers, data):
    r = http("POST", path, data=data, headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"


def test_foreign_host_is_refused(http):
    r = http("GET", "/v1/capabilities", headers={"Host": "attacker.example:8765"})
    assert r.status_code == 421 and "host" in r.json()["error"]["message"]


def test_cross_site_post_is_refused(http):
    r = http("POST", "/v1/models/tiny_det/rollback", headers={"Origin": "https://attacker.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "foreign_origin"


def test_same_origin_post_passes_the_guard(server, http):
    r = http("POST", "/v1/models/tiny_det/rollback", headers={"Origin": server.url})
    assert r.status_code == 400  # reaches the route: nothing to roll back to


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_no_schema_or_docs(server, http, path):
    assert requests.get(server.url + path, timeout=TIMEOUT).status_code in (401, 404)
    assert http("GET", path).status_code == 404


def test_server_error_body_has_no_exception_text(server, http, prediction):
    with sqlite3.connect(server.data_dir / "ledger.sqlite") as db:  # a damaged ledger row
        db.execute("UPDATE predictions SET summary='{broken' WHERE id=?", (prediction["id"],))
    r = http("GET", f"/v1/predictions/{prediction['id']}")
    assert r.status_code == 500
    message = r.json()["error"]["message"]
    assert "reference" in message and "Expecting" not in message and "/" not in message
    reference = message.split("reference ")[1].split()[0]
    assert reference in server.log() and "JSONDecodeError" in server.log()
