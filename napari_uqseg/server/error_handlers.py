"""The one error body of protocol v1 and the handlers that turn every server exception into it.

``{"error": {"status", "code", "source", "message"}, "protocol": 1}``; each exception type maps to one status:

================================  ======  =========================
exception                         status  code
================================  ======  =========================
``InputError`` (core)             400     ``bad_input``
``RequestValidationError``        400     ``bad_input`` (pydantic request models, query parameters)
``UnauthorizedError`` (access)    401     ``unauthorized``
``ForbiddenError`` (access)       403     ``forbidden``
``NotFoundError`` (core)          404     ``not_found``
``ConflictError`` (core)          409     ``conflict``
``MediaTypeError``                415     ``unsupported_media_type``
``PacsError``                     502     ``pacs_error``
``BusyError``                     503     ``busy`` (with ``Retry-After``)
``StorageFullError``, disk full   507     ``insufficient_storage``
anything else                     500     ``server_error`` (traceback to the server log only)
================================  ======  =========================
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from napari_uqseg.core.errors import ConflictError, InputError, NotFoundError
from napari_uqseg.core.wire import PROTOCOL_VERSION
from napari_uqseg.server.access import ForbiddenError, UnauthorizedError
from napari_uqseg.server.dicomweb import PacsError
from napari_uqseg.server.disk_guard import StorageFullError, is_disk_full
from napari_uqseg.server.load_limits import BusyError
from napari_uqseg.server.request_guard import MediaTypeError, log_unexpected

#: pydantic error types said in the protocol's words (the rest keep pydantic's message)
VALIDATION_WORDS = {"extra_forbidden": "unknown field", "missing": "is required"}


def error_response(status: int, code: str, source: str, message: str) -> JSONResponse:
    """The one error body of protocol v1: ``{"error": {status, code, source, message}, "protocol"}``."""
    body = {
        "error": {"status": status, "code": code, "source": source, "message": message},
        "protocol": PROTOCOL_VERSION,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def input_error(_: Request, exc: InputError) -> JSONResponse:
    if isinstance(exc, ForbiddenError):
        return error_response(403, "forbidden", exc.source, exc.problem)
    if isinstance(exc, MediaTypeError):
        return error_response(415, "unsupported_media_type", exc.source, exc.problem)
    if isinstance(exc, NotFoundError):
        return error_response(404, "not_found", exc.source, exc.problem)
    if isinstance(exc, ConflictError):
        return error_response(409, "conflict", exc.source, exc.problem)
    return error_response(400, "bad_input", exc.source, exc.problem)


def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """The first problem pydantic found: its field path as ``source``."""
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    source = ".".join(str(p) for p in first.get("loc", ()))
    message = VALIDATION_WORDS.get(str(first.get("type")), str(first.get("msg", exc)))
    return error_response(400, "bad_input", source or "body", message)


def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), "request", str(exc.detail))


def busy(_: Request, exc: BusyError) -> JSONResponse:
    response = error_response(503, "busy", exc.source, exc.problem)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def unauthorized(_: Request, exc: UnauthorizedError) -> JSONResponse:
    return error_response(401, "unauthorized", "Authorization", str(exc))


def storage_full(_: Request, exc: StorageFullError) -> JSONResponse:
    return error_response(507, "insufficient_storage", exc.source, exc.problem)


def pacs_error(_: Request, exc: PacsError) -> JSONResponse:
    return error_response(502, "pacs_error", "dicomweb", str(exc))


def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 with a log reference; 507 when the exception is a full disk (nothing was acknowledged)."""
    if is_disk_full(exc):  # ENOSPC met by a write, or SQLite's "disk is full"
        return error_response(507, "insufficient_storage", "disk", "the server's disk is full; nothing was stored")
    ref = log_unexpected(request, exc)  # traceback to the server log; no paths or PHI to the caller
    return error_response(500, "server_error", "server", f"internal error (reference {ref} in the server log)")


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler above on ``app``."""
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(UnauthorizedError, unauthorized)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(BusyError, busy)
    app.add_exception_handler(StorageFullError, storage_full)
    app.add_exception_handler(PacsError, pacs_error)
    # OSError and sqlite3.Error get their own registration so that a full disk is answered without the
    # re-raise (and closed connection) of the catch-all Exception handler
    for kind in (OSError, sqlite3.Error, Exception):
        app.add_exception_handler(kind, unexpected)
