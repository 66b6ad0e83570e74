"""Bearer token, loopback-only default bind and per-route request body limits."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from pathlib import Path

from starlette.middleware.body_limit import RequestBodyLimitResponder
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.wire import PROTOCOL_VERSION

TOKEN_FILE = "token"
TOKEN_ENV = "UQSEG_TOKEN"


def load_or_create_token(data_dir: Path) -> tuple[str, bool]:
    """The server token from ``$UQSEG_TOKEN`` or ``data_dir/token``; created (mode 0600) if neither exists.

    Returns
    -------
    (str, bool)
        The token and whether it was created now (the caller prints it once).
    """
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, False
    path = data_dir / TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        if len(token) < 16:
            raise InputError(str(path), "token is shorter than 16 characters; delete the file to make a new one")
        return token, False
    token = secrets.token_urlsafe(32)
    # O_EXCL + 0600 at creation: the token is never readable by others, not even for a moment
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, True


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header."""
    if not header or not header.startswith("Bearer "):
        return False
    return secrets.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (names are resolved)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_bind(host: str, auth: bool, tls: bool, allow_insecure: bool) -> None:
    """Refuse a public bind without a token, and without TLS unless explicitly allowed.

    Raises
    ------
    InputError
        ``--host`` is not loopback and auth is off, or TLS is off without ``--allow-insecure-public``.
    """
    if is_loopback(host):
        return
    if not auth:
        raise InputError("--host", f"{host} is not a loopback address: the server refuses to run without a token there")
    if not tls and not allow_insecure:
        raise InputError(
            "--host",
            f"{host} is not a loopback address: give --ssl-certfile/--ssl-keyfile (or --allow-insecure-public "
            "behind a TLS proxy), since the token and PHI would otherwise cross the network in clear",
        )


class BodyLimitMiddleware:
    """Starlette's request body limit with a larger cap for image uploads than for JSON routes.

    Parameters
    ----------
    upload_limit : int
        Bytes allowed for ``PUT /v1/images/...`` (raw NIfTI bodies).
    json_limit : int
        Bytes allowed for every other route (JSON; corrections carry a base64 label map).
    """

    def __init__(self, app: ASGIApp, upload_limit: int, json_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.json_limit = json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        uploads = ("/v1/images/", "/v1/model-archives/", "/v1/datasets/")  # raw bodies, not JSON
        limit = self.upload_limit if scope["path"].startswith(uploads) else self.json_limit
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:  # answered before the body is read, in the v1 error shape
            await too_large(limit)(scope, receive, send)
            return
        await RequestBodyLimitResponder(self.app, limit)(scope, receive, send)


def too_large(limit: int) -> JSONResponse:
    """The 413 answer (protocol v1 error body)."""
    message = f"request body is larger than the server's limit of {limit // (1024 * 1024)} MiB"
    error = {"status": 413, "code": "too_large", "source": "request", "message": message}
    return JSONResponse({"error": error, "protocol": PROTOCOL_VERSION}, status_code=413)
