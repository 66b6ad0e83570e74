"""HTTP routes of the model library (``server.model_library``): catalogue, pull, import, export, datasets.

The server pulls only from its own catalogue (``$UQSEG_CATALOGUE`` or the shipped one), never from a URL a
client sends. Archive uploads (``PUT``) have the image-upload body cap (see ``server.security``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from napari_uqseg.core.errors import InputError
from napari_uqseg.server import model_library
from napari_uqseg.server.access import require_maintainer
from napari_uqseg.server.service import Service, json_safe

ARCHIVE_MEDIA = "application/gzip"


def add_model_routes(api: APIRouter, service: Service) -> None:
    """Register the model-library routes on the ``/v1`` router ``api``."""

    @api.get("/catalogue")
    async def catalogue() -> JSONResponse:
        entries = await run_in_threadpool(model_library.catalogue)
        return JSONResponse(json_safe([e.to_dict() for e in entries]))

    maintainer = [Depends(require_maintainer)]  # adding models or training data is a maintainer's act

    @api.post("/models/{name}/pull", dependencies=maintainer)
    async def pull(name: str, request: Request) -> JSONResponse:
        body = await request.json() if await request.body() else {}
        entry = body.get("entry", name) if isinstance(body, dict) else None
        if not isinstance(entry, str):
            raise InputError("entry", "must be the name of a catalogue entry")
        summary = await run_in_threadpool(model_library.pull_model, service, entry, name)
        return JSONResponse(json_safe(summary.to_dict()), status_code=201)

    @api.put("/model-archives/{name}", dependencies=maintainer)
    async def import_archive(name: str, request: Request) -> JSONResponse:
        data = await request.body()
        summary = await run_in_threadpool(model_library.import_model_bytes, service, name, data)
        return JSONResponse(json_safe(summary.to_dict()), status_code=201)

    @api.get("/models/{name}/archive")
    async def export(name: str, version: str | None = None) -> FileResponse:
        tmp = Path(tempfile.mkdtemp(prefix="export.", dir=service.store.root))
        archive = await run_in_threadpool(model_library.export_model, service, name, version, tmp / f"{name}.tar.gz")
        cleanup = BackgroundTask(shutil.rmtree, tmp, ignore_errors=True)
        return FileResponse(archive, media_type=ARCHIVE_MEDIA, filename=archive.name, background=cleanup)

    @api.put("/datasets/{name}", dependencies=maintainer)
    async def dataset(name: str, request: Request) -> JSONResponse:
        data = await request.body()
        folder = await run_in_threadpool(model_library.add_dataset_bytes, service, name, data)
        return JSONResponse({"dataset": folder.name}, status_code=201)
