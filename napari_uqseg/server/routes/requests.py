"""What every route shares: the service it serves, JSON bodies checked by pydantic models, JSON answers.

A request model derives from :class:`RequestBody` (unknown fields and wrong types are refused, no coercion)
and reaches a route through :func:`json_model`, which keeps the protocol's rules for bodies: a body must
say it is JSON (415 otherwise), must parse (400 ``body``) and must be an object; a failed check is a
``RequestValidationError`` that ``server.error_handlers`` answers with the protocol's error body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.json_values import clean_json
from napari_uqseg.server.dicom_service import DicomService
from napari_uqseg.server.request_guard import MediaTypeError, is_json_type
from napari_uqseg.server.service import Service

NIFTI_MEDIA = "application/octet-stream"
Body = TypeVar("Body", bound="RequestBody")


class RequestBody(BaseModel):
    """Base of the JSON request models: extra fields forbidden, types strict (``"1"`` is not ``1``)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def service_of(request: Request) -> Service:
    """The ``Service`` the app was built around (``app.state.service``)."""
    return request.app.state.service


def dicom_of(request: Request) -> DicomService:
    """The DICOM path of that service (``app.state.dicom``)."""
    return request.app.state.dicom


ServiceDep = Annotated[Service, Depends(service_of)]
DicomDep = Annotated[DicomService, Depends(dicom_of)]


def ok(content: Any, status: int = 200) -> JSONResponse:
    """A JSON answer; NaN and Infinity travel as ``null``."""
    return JSONResponse(clean_json(content), status_code=status)


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (empty body: ``{}``); InputError otherwise, MediaTypeError unless JSON."""
    raw = await request.body()
    if raw and not is_json_type(request.headers.get("content-type", "")):
        raise MediaTypeError("Content-Type", "a JSON body needs Content-Type: application/json")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad encodings, nesting deeper than Python's stack
        raise InputError("body", f"not valid JSON ({exc.__class__.__name__}: {str(exc)[:200]})") from exc
    if not isinstance(data, dict):
        raise InputError("body", "must be a JSON object")
    return data


def json_model(model: type[Body]) -> Callable[[Request], Awaitable[Body]]:
    """A dependency giving the body checked against ``model``; use as ``Annotated[M, Depends(json_model(M))]``."""

    async def parse(request: Request) -> Body:
        data = await json_body(request)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_context=False), body=data) from exc

    parse.__name__ = f"parse_{model.__name__}"
    return parse
