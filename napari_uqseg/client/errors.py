"""Typed client errors: each says what went wrong and what to do, for both backends."""

from __future__ import annotations

from typing import Any

from napari_uqseg.core.errors import InputError, UQSegError


class BackendError(UQSegError):
    """Base of every error a ``Backend`` raises.

    Attributes
    ----------
    status : int or None
        HTTP status (``None`` when the request never got an answer).
    code : str
        Protocol error code (``bad_input``, ``not_found``, ``unauthorized``, ...).
    source : str
        What was wrong (a field, an id, ``"server"``).
    """

    def __init__(self, message: str, status: int | None = None, code: str = "", source: str = "server") -> None:
        UQSegError.__init__(self, message)  # not super(): in BadRequest's MRO it would reach InputError.__init__
        self.status, self.code, self.source = status, code, source


class ConnectionFailed(BackendError):
    """The server could not be reached (down, wrong address, TLS verification failed)."""


class BackendTimeout(BackendError):
    """The server did not answer within the client's timeout."""


class AuthError(BackendError):
    """Missing or wrong bearer token (HTTP 401)."""


class BadRequest(BackendError, InputError):
    """The server refused the input (HTTP 400); also an ``InputError``, as local validation raises."""

    def __init__(
        self, message: str, status: int | None = 400, code: str = "bad_input", source: str = "request"
    ) -> None:
        BackendError.__init__(self, f"{source}: {message}", status, code, source)
        self.problem = message


class NotFound(BadRequest):
    """Unknown model, version, image, prediction or job (HTTP 404)."""


class TooLarge(BackendError):
    """The request body exceeds the server's limit (HTTP 413)."""


class ServerError(BackendError):
    """The server failed (HTTP 5xx): a bug or a broken model on the server side; see its log."""


class ProtocolMismatch(BackendError):
    """Client and server speak different protocol versions."""


class JobFailed(BackendError):
    """A background job ended in ``failed`` (``wait_job`` with ``raise_on_failure``)."""


def error_from_response(status: int, body: Any, url: str) -> BackendError:
    """The typed error for a non-2xx answer with protocol-v1 error body ``body`` (or anything else)."""
    err = body.get("error", {}) if isinstance(body, dict) else {}
    message = str(err.get("message") or (body if isinstance(body, str) else "")).strip()[:2000]
    source = str(err.get("source") or "request")
    code = str(err.get("code") or "")
    if status == 401:
        return AuthError(
            f"{url}: the server refused the token ({message or 'unauthorized'}); "
            "copy the token printed by `uqseg serve` (or its data folder's token file)",
            status,
            code,
            source,
        )
    if status == 404:
        return NotFound(message or f"{url} not found", status, code or "not_found", source)
    if status == 413:
        return TooLarge(
            f"{url}: request body is larger than the server accepts ({message})", status, "too_large", source
        )
    if 400 <= status < 500:
        return BadRequest(message or f"HTTP {status}", status, code or "bad_input", source)
    return ServerError(
        f"{url}: server error HTTP {status}: {message or 'no details'}", status, code or "server_error", source
    )
