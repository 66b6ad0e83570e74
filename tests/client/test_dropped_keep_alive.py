"""A server closing a kept-alive connection without answering: a GET is resent once, a POST is not."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from napari_uqseg.client.errors import ConnectionFailed
from napari_uqseg.client.remote import RemoteBackend


class DroppingServer:
    """Loopback HTTP server that closes its first ``drops`` connections after reading a request, unanswered."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.requests: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = conn.recv(65536).decode("latin-1")
                self.requests.append(head.split("\r\n", 1)[0])
                if len(self.requests) <= self.drops:
                    continue  # closed with no response, as a server dropping an idle keep-alive connection does
                body = json.dumps({"status": "ok", "protocol": 1}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dropping():
    server = DroppingServer(drops=1)
    yield server
    server.close()


def test_a_get_is_resent_once_after_the_connection_was_dropped(dropping):
    backend = RemoteBackend(dropping.url, "token", check_protocol=False)
    assert backend.health()["status"] == "ok"
    assert dropping.requests == ["GET /v1/health HTTP/1.1"] * 2


def test_a_post_is_not_resent(dropping):
    backend = RemoteBackend(dropping.url, "token", check_protocol=False)
    with pytest.raises(ConnectionFailed, match="cannot reach the server"):
        backend._json("POST", "/v1/jobs", json={"kind": "train"})
    assert dropping.requests == ["POST /v1/jobs HTTP/1.1"]


def test_a_get_dropped_twice_is_reported():
    server = DroppingServer(drops=2)
    try:
        backend = RemoteBackend(server.url, "token", check_protocol=False)
        with pytest.raises(ConnectionFailed, match="cannot reach the server"):
            backend.health()
        assert len(server.requests) == 2
    finally:
        server.close()
