"""Browser-facing guards: Host checks against DNS rebinding, Origin and content-type checks against CSRF.

A web page the user visits can send "simple" cross-site requests (``text/plain``, form encodings) to a
loopback server without a preflight, and a DNS-rebinding page can even read the answers. So every
request must name an allowed ``Host``, every state-changing request from a browser must come from an
allowed ``Origin``, and a state-changing request with a body must say it is JSON (or, for image
uploads, raw bytes): the content types a page can send without a preflight are refused (415).
"""

from __future__ import annotations

import json
import sys
import traceback
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.wire import PROTOCOL_VERSION

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
JSON_TYPES = ("application/json",)
UPLOAD_TYPES = ("application/octet-stream", "application/gzip", "application/x-gzip", "application/zip")


class MediaTypeError(InputError):
    """A body of a type the route does not take (HTTP 415)."""


def log_unexpected(request: object, exc: BaseException) -> str:
    """Print a server error's traceback to the server log (stderr); returns the reference given to the caller."""
    ref = uuid.uuid4().hex[:12]
    method, path = getattr(request, "method", "?"), getattr(getattr(request, "url", None), "path", "?")
    print(f"server error {ref} on {method} {path}:", file=sys.stderr)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return ref


def host_name(value: str) -> str:
    """The host part of a ``Host`` header value or of a URL's netloc, lower case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def media_type(value: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return value.split(";", 1)[0].strip().lower()


def is_json_type(value: str) -> bool:
    kind = media_type(value)
    return kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json"))


class RequestGuardMiddleware:
    """Refuse foreign ``Host`` (421), foreign ``Origin`` (403) and non-JSON state-changing bodies (415).

    Parameters
    ----------
    allowed_hosts : iterable of str or None
        Host names the server answers to. ``None``: any (a public bind with a token and no list).
        A loopback bind passes the loopback names (plus any ``--allowed-host``).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {host_name(h) for h in allowed_hosts}

    def _problem(self, scope: Scope) -> tuple[int, str, str, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = host_name(headers.get("host", ""))
        if self.allowed is not None and host not in self.allowed:
            return 421, "wrong_host", "Host", f"this server does not answer to host {host[:80]!r}"
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin != "null":
            origin_host = host_name(urlsplit(origin).netloc)
            if origin_host != host and (self.allowed is None or origin_host not in self.allowed):
                return 403, "foreign_origin", "Origin", f"cross-site request from {origin[:80]!r} refused"
        elif origin == "null":
            return 403, "foreign_origin", "Origin", "cross-site request from an opaque origin refused"
        kind = headers.get("content-type")
        if kind is None:
            return None  # no body type: a body-less action (rollback, cancel) or a JSON body without a type
        raw_paths = ("/v1/images/", "/v1/model-archives/", "/v1/datasets/")  # bodies that are files, not JSON
        allowed = is_json_type(kind) or (scope["path"].startswith(raw_paths) and media_type(kind) in UPLOAD_TYPES)
        if not allowed:
            return (
                415,
                "unsupported_media_type",
                "Content-Type",
                f"{media_type(kind)[:60]!r} is not accepted here; send JSON",
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, code, source, message = problem
        body = json.dumps(
            {
                "error": {"status": status, "code": code, "source": source, "message": message},
                "protocol": PROTOCOL_VERSION,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
