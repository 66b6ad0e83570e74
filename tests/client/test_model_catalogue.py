"""Model catalogue: pulls verified by sha256 against a real HTTP server on loopback, imports, exports.

The archive server is a ``http.server`` thread on 127.0.0.1 serving a real model archive, the same bytes
under a wrong checksum, and a download that stops half-way (Content-Length promised, connection closed).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from napari_uqseg.cli import main as uqseg
from napari_uqseg.client.errors import BadRequest
from napari_uqseg.client.local import LocalBackend
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.archives import pack_model, unpack_model
from napari_uqseg.core.catalogue import CATALOGUE_ENV
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.testing.server import start_server


@pytest.fixture(scope="module")
def archive_server(tiny_models, tmp_path_factory):
    """``(catalogue URL, archive bytes)``; entries ``good``, ``badsum`` (wrong sha256), ``cut`` (half a body)."""
    archive = pack_model(tiny_models["tiny_mcd"], tmp_path_factory.mktemp("archive") / "tiny.tar.gz")
    body = archive.read_bytes()
    sha = hashlib.sha256(body).hexdigest()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):  # noqa: N802
            if self.path == "/catalogue.json":
                return self._send(json.dumps(catalogue).encode())
            if self.path == "/tiny.tar.gz":
                return self._send(body)
            if self.path == "/cut.tar.gz":  # promise the whole body, send half, close the connection
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            self.send_error(404)
            return None

        def _send(self, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    card = {"task": "tiny synthetic", "method": "mc_dropout", "licence": "BSD-3-Clause"}
    catalogue = {
        "models": [
            {"name": "good", "url": f"{base}/tiny.tar.gz", "sha256": sha, "card": card},
            {"name": "badsum", "url": f"{base}/tiny.tar.gz", "sha256": "0" * 64, "card": card},
            {"name": "cut", "url": f"{base}/cut.tar.gz", "sha256": sha, "card": card},
        ]
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{base}/catalogue.json", body
    server.shutdown()
    server.server_close()


def _leftovers(data_dir):
    """Files in the data folder's transfer area and model folders other than registered versions."""
    tmp = data_dir / "tmp"
    return sorted(p.name for p in tmp.rglob("*")) if tmp.exists() else []


def test_local_pull_good_refuses_wrong_checksum_and_interrupted_download(archive_server, tmp_path, monkeypatch):
    url, _ = archive_server
    monkeypatch.setenv(CATALOGUE_ENV, url)
    data = tmp_path / "data"
    with LocalBackend(data, "cpu", jobs=False) as local:
        assert [e["name"] for e in local.catalogue()] == ["good", "badsum", "cut"]
        with pytest.raises(BadRequest, match="checksum mismatch"):
            local.pull_model("badsum")
        with pytest.raises(BadRequest, match="incomplete|failed"):
            local.pull_model("cut")
        assert local.models() == []
        assert not (data / "models" / "badsum").exists() and not (data / "models" / "cut").exists()
        assert _leftovers(data) == []
        summary = local.pull_model("good", "brain")
        assert (summary.name, summary.serving, summary.method_of()) == ("brain", "v1", "mc_dropout")
        image, _ = synthetic_case((24, 24, 24), seed=5)
        result = local.predict(image, "brain")
        assert "mutual_information" in result.prediction.maps
        assert _leftovers(data) == []


def test_remote_pull_import_export_through_the_server(archive_server, tiny_models, tmp_path, monkeypatch):
    url, body = archive_server
    monkeypatch.setenv(CATALOGUE_ENV, url)  # the server subprocess inherits it: its own catalogue
    handle = start_server(tmp_path / "server", {})
    try:
        with RemoteBackend(handle.url, handle.token) as remote:
            assert [e["name"] for e in remote.catalogue()] == ["good", "badsum", "cut"]
            with pytest.raises(BadRequest, match="checksum mismatch"):
                remote.pull_model("badsum")
            with pytest.raises(BadRequest, match="incomplete|failed"):
                remote.pull_model("cut")
            assert remote.models() == []
            assert remote.pull_model("good").serving == "v1"
            imported = remote.import_model("from-folder", str(tiny_models["tiny_det"]))
            assert imported.method_of() == "deterministic"
            out = remote.export_model("good", None, str(tmp_path / "exported.tar.gz"))
            unpacked = unpack_model(out, tmp_path / "unpacked")
            assert json.loads((unpacked / "model.json").read_text())["method"] == "mc_dropout"
            again = remote.import_model("good", out)
            assert [v.version for v in again.versions] == ["v1", "v2"]
            image, _ = synthetic_case((24, 24, 24), seed=6)
            assert remote.predict(image, "good", "v2").prediction.mask.shape == image.shape
    finally:
        handle.stop()
    assert _leftovers(tmp_path / "server") == []


def test_cli_models_pull_export_import(archive_server, tmp_path, capsys):
    url, body = archive_server
    data = str(tmp_path / "data")
    assert uqseg(["models", "--data", data, "--catalogue", url, "list"]) == 0
    assert "good" in capsys.readouterr().out
    assert uqseg(["models", "--data", data, "--catalogue", url, "pull", "badsum"]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert uqseg(["models", "--data", data, "--catalogue", url, "pull", "good"]) == 0
    archive = tmp_path / "good.tar.gz"
    assert uqseg(["models", "--data", data, "export", "good", "--out", str(archive)]) == 0
    printed = capsys.readouterr().out
    entry = json.loads(printed[printed.index("{") :])
    assert entry["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert uqseg(["models", "--data", data, "import", str(archive), "--name", "copy"]) == 0
    assert uqseg(["models", "--data", data, "list"]) == 0
    listed = capsys.readouterr().out
    assert "copy" in listed and "good" in listed


def test_unpack_refuses_unsafe_members_and_leaves_nothing(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "model.json"
    payload.write_text("{}")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../escape.json")
    with pytest.raises(InputError, match="unsafe"):
        unpack_model(evil, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escape.json").exists()
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="not a readable model archive"):
        unpack_model(garbage, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "garbage.tar.gz", "model.json"]
