"""RemoteBackend: light imports, typed errors, protocol version check (real HTTP servers)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from napari_uqseg.client.errors import AuthError, BadRequest, ConnectionFailed, NotFoundError, ProtocolMismatch
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.server import free_port


def test_client_imports_no_torch_qt_napari_or_fastapi():
    code = (
        "import sys, napari_uqseg.client, napari_uqseg.client.remote, napari_uqseg.client.local, "
        "napari_uqseg.client.errors, napari_uqseg.client.payloads; "
        "heavy = [m for m in ('torch', 'monai', 'qtpy', 'PyQt5', 'PyQt6', 'napari', 'fastapi', 'uvicorn') "
        "if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def fake_server(protocol):
    """A real HTTP server that answers /v1/health with ``protocol`` (a server of another version)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps({"status": "ok", "protocol": protocol}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    ("protocol", "words"), [(99, "server too new"), (0, "server too old"), ("x", "protocol version")]
)
def test_protocol_mismatch_is_explained(protocol, words):
    server = fake_server(protocol)
    try:
        with pytest.raises(ProtocolMismatch, match=words):
            RemoteBackend(f"http://127.0.0.1:{server.server_address[1]}", token="t")
    finally:
        server.shutdown()


def test_nothing_listening_is_connection_failed():
    with pytest.raises(ConnectionFailed, match="cannot reach"):
        RemoteBackend(f"http://127.0.0.1:{free_port()}", token="t", timeout=2)


def test_not_a_url():
    with pytest.raises(ConnectionFailed, match="http"):
        RemoteBackend("ftp://example.org", token="t")


def test_wrong_token_is_auth_error(uqseg_server):
    backend = RemoteBackend(uqseg_server.url, token="not-the-token")  # health needs no token
    with pytest.raises(AuthError, match="token"):
        backend.models()


def test_typed_errors_for_bad_requests(uqseg_server):
    image, _ = synthetic_case((24, 24, 24), seed=61)
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        with pytest.raises(NotFoundError, match="no_such_model"):
            backend.predict(image, "no_such_model")
        with pytest.raises(NotFoundError):
            backend.job("e" * 32)
        with pytest.raises(BadRequest, match="unknown option"):
            backend.predict(image, "tiny_det", options={"bogus": 1})
        with pytest.raises(InputError):  # BadRequest is an InputError too, like local validation errors
            backend.promote("tiny_det", "../v1")
        with pytest.raises(InputError, match="NaN"):  # checked before anything is sent
            backend.predict(Volume(np.full((8, 8, 8), np.nan, np.float32), np.eye(4)), "tiny_det")
