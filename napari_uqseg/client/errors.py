"""Typed client errors: each says what went wrong and what to do, for both backends.

The tree (``core.errors`` classes in brackets; catch ``BackendError`` for anything a backend raises)::

    UQSegError [core]
    └── BackendError                 status, code, source
        ├── ConnectionFailed         server unreachable, wrong address, TLS verification failed
        ├── BackendTimeout           no answer within the client's timeout
        ├── AuthError                401: missing or wrong bearer token
        ├── TooLarge                 413: request body over the server's limit
        ├── ServerError              5xx: a failure on the server (see its log)
        ├── ProtocolMismatch         client and server speak different protocol versions
        └── BadRequest               400; also an InputError [core], as local validation raises
            └── NotFoundError        404; also a NotFoundError [core]: unknown model, image, job ...

:func:`describe_error` turns any of them (or anything else a worker raised) into one sentence for the user.
"""

from __future__ import annotations

import logging
from typing import Any

from napari_uqseg.core import errors as core_errors
from napari_uqseg.core.errors import CancelledError, InputError, UQSegError

logger = logging.getLogger(__name__)


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


class NotFoundError(BadRequest, core_errors.NotFoundError):
    """Unknown model, version, image, prediction or job (HTTP 404)."""


class TooLarge(BackendError):
    """The request body exceeds the server's limit (HTTP 413)."""


class ServerError(BackendError):
    """The server failed (HTTP 5xx): a bug or a broken model on the server side; see its log."""


class ProtocolMismatch(BackendError):
    """Client and server speak different protocol versions."""


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
        return NotFoundError(message or f"{url} not found", status, code or "not_found", source)
    if status == 413:
        return TooLarge(
            f"{url}: request body is larger than the server accepts ({message})", status, "too_large", source
        )
    if 400 <= status < 500:
        return BadRequest(message or f"HTTP {status}", status, code or "bad_input", source)
    return ServerError(
        f"{url}: server error HTTP {status}: {message or 'no details'}", status, code or "server_error", source
    )


def describe_error(exc: BaseException, context: str = "") -> str:
    """One plain sentence for the user; a traceback goes to the log only, for errors this package did not make.

    Parameters
    ----------
    exc : BaseException
        What a worker raised.
    context : str
        What was being done ("Prediction", "Connection", ...), prefixed as ``"<context> failed: "``.
    """
    if isinstance(exc, CancelledError):
        return f"{context} cancelled." if context else "Cancelled."
    prefix = f"{context} failed: " if context else ""
    if not isinstance(exc, UQSegError):
        logger.error("%s", prefix or "error", exc_info=(type(exc), exc, exc.__traceback__))
    return prefix + _plain(exc)


def _plain(exc: BaseException) -> str:
    import requests

    if isinstance(exc, ConnectionFailed):
        return f"the server is unreachable. {exc}"
    if isinstance(exc, AuthError):
        return f"the token is wrong or missing. {exc}"
    if isinstance(exc, TooLarge):
        return f"the image is too large for the server. {exc}"
    if isinstance(exc, InputError):
        return f"{exc.problem} ({exc.source})"
    if isinstance(exc, UQSegError):
        return str(exc)
    if isinstance(exc, requests.ConnectionError | ConnectionError):
        return "the server is unreachable; check the address and that `uqseg serve` is running."
    if isinstance(exc, requests.Timeout | TimeoutError):
        return "the server did not answer in time; it may be busy, try again."
    if isinstance(exc, MemoryError):
        return "the image is too large for the memory available here; crop or downsample it."
    return f"unexpected error ({type(exc).__name__}: {exc})"
