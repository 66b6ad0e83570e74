"""Images: stored once by content hash, then referenced by predictions and corrections.

``PUT  /v1/images/{sha}``   raw NIfTI bytes streamed to disk and checked against the sha256 in the path
``POST /v1/images/dicom``   zip of one DICOM series -> stored image (like ``PUT``)
``GET  /v1/images/{sha}``   a stored image as NIfTI (a viewer shows the PACS series it predicted)
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from napari_uqseg.server.routes.requests import NIFTI_MEDIA, DicomDep, ServiceDep, ok
from napari_uqseg.server.uploads import receive_upload

router = APIRouter(prefix="/images", tags=["images"])


@router.put("/{sha}")
async def put_image(sha: str, request: Request, service: ServiceDep) -> JSONResponse:
    """Async: the body is streamed to disk as it arrives; the checks and the ledger run in the thread pool."""
    service.store.ensure_free(int(request.headers.get("content-length") or 0))
    upload, digest = await receive_upload(request, service.store.root / "images")
    result = await run_in_threadpool(service.put_image_file, sha, upload, digest)
    return ok(result, 201 if result["created"] else 200)


@router.post("/dicom")
async def upload_dicom(request: Request, service: ServiceDep, dicom: DicomDep) -> JSONResponse:
    service.store.ensure_free(int(request.headers.get("content-length") or 0))
    upload, _ = await receive_upload(request, service.store.root / "images")  # streamed to disk, not held
    result = await run_in_threadpool(dicom.upload_zip_file, upload, service.limits["max_upload_bytes"])
    return ok(result, 201 if result["created"] else 200)


@router.get("/{sha}")
def image(sha: str, dicom: DicomDep) -> FileResponse:
    return FileResponse(dicom.image_path(sha), media_type=NIFTI_MEDIA, headers={"X-UQSeg-Format": "nifti1"})
