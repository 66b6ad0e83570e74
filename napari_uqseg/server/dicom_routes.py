"""HTTP routes of the DICOM path (protocol v1 additions), thin adapters over :class:`DicomService`.

``POST /v1/images/dicom``                 zip of one DICOM series -> stored image (like ``PUT /v1/images/{sha}``)
``GET  /v1/pacs/studies``                 studies of the server's PACS (``?limit=&offset=``)
``GET  /v1/pacs/studies/{study}/series``  series of one study
``POST /v1/pacs/predictions``             ``{study, series, model, version?, options?, store?}``: predict by UID
                                          and store the SEG and parametric maps in the PACS (STOW-RS)
``POST /v1/pacs/triage``                  ``{studies, model, version?, store?}``: predict every image series of the
                                          studies, ranked by uncertainty (synchronous; at most 50 studies)
``GET  /v1/images/{sha}``                 a stored image as NIfTI (a viewer shows the PACS series it predicted)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from napari_uqseg.core.errors import InputError
from napari_uqseg.server.dicom_service import DicomService
from napari_uqseg.server.dicomweb import PacsError
from napari_uqseg.server.service import Service
from napari_uqseg.server.uploads import receive_upload

PREDICT_FIELDS = {"study", "series", "model", "version", "options", "store"}


def _predict_arguments(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - PREDICT_FIELDS
    if unknown:
        raise InputError("body", f"unknown field(s) {sorted(unknown)}")
    for key in ("study", "series", "model"):
        if not isinstance(body.get(key), str):
            raise InputError(key, "is required and must be a string")
    if body.get("version") is not None and not isinstance(body["version"], str):
        raise InputError("version", "must be a string like 'v2'")
    if not isinstance(body.get("options") or {}, dict):
        raise InputError("options", "must be an object")
    if not isinstance(body.get("store", True), bool):
        raise InputError("store", "must be true or false")
    return {
        "study": body["study"],
        "series": body["series"],
        "model": body["model"],
        "version": body.get("version"),
        "options": body.get("options") or {},
        "store": body.get("store", True),
    }


def install_dicom_routes(app: FastAPI, api: APIRouter, service: Service, upload_limit: int) -> None:
    """Add the DICOM routes to ``api`` (the token-protected ``/v1`` router) and the PACS error handler to ``app``.

    Call before ``app.include_router(api)``. The PACS is ``service.pacs`` (set by ``uqseg serve --dicomweb``).
    """
    from napari_uqseg.server.app import error_response, json_body, ok

    dicom = DicomService(service, service.pacs)

    @app.exception_handler(PacsError)
    async def pacs_error(_: Request, exc: PacsError) -> JSONResponse:
        return error_response(502, "pacs_error", "dicomweb", str(exc))

    @api.post("/images/dicom")
    async def upload_dicom(request: Request) -> JSONResponse:
        service.store.ensure_free(int(request.headers.get("content-length") or 0))
        upload, _ = await receive_upload(request, service.store.root / "images")  # streamed to disk, not held
        result = await run_in_threadpool(dicom.upload_zip_file, upload, upload_limit)
        return ok(result, 201 if result["created"] else 200)

    @api.post("/pacs/triage")
    async def triage(request: Request) -> JSONResponse:
        body = await json_body(request)
        unknown = set(body) - {"studies", "model", "version", "store"}
        if unknown:
            raise InputError("body", f"unknown field(s) {sorted(unknown)}")
        if not isinstance(body.get("model"), str):
            raise InputError("model", "is required and must be a string")
        if body.get("version") is not None and not isinstance(body["version"], str):
            raise InputError("version", "must be a string like 'v2'")
        if not isinstance(body.get("store", True), bool):
            raise InputError("store", "must be true or false")
        arguments = (body.get("studies"), body["model"], body.get("version"), body.get("store", True))
        return ok(await run_in_threadpool(dicom.triage, *arguments))

    @api.get("/images/{sha}")
    async def image(sha: str) -> FileResponse:
        path = await run_in_threadpool(dicom.image_path, sha)
        return FileResponse(path, media_type="application/octet-stream", headers={"X-UQSeg-Format": "nifti1"})

    @api.get("/pacs/studies")
    async def studies(limit: int = 100, offset: int = 0) -> JSONResponse:
        return ok(await run_in_threadpool(dicom.studies, limit, offset))

    @api.get("/pacs/studies/{study}/series")
    async def series(study: str) -> JSONResponse:
        return ok(await run_in_threadpool(dicom.series, study))

    @api.post("/pacs/predictions")
    async def predict(request: Request) -> JSONResponse:
        arguments = _predict_arguments(await json_body(request))
        return ok(await run_in_threadpool(lambda: dicom.predict_series(**arguments)), 201)
