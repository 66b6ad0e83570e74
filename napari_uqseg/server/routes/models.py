"""Models: named models with versions, which one serves, and the model library (catalogue, archives, data).

``GET  /v1/models``                     every model with its versions and serving version
``GET  /v1/models/{name}``              one model; ``/versions``: its versions
``POST /v1/models/{name}/promote``      ``{version}``: serve that version (maintainer)
``POST /v1/models/{name}/rollback``     serve the previously served version again (maintainer)
``GET  /v1/catalogue``                  entries of the server's catalogue
``POST /v1/models/{name}/pull``         ``{entry?}``: download a catalogue entry as ``name`` (maintainer)
``PUT  /v1/model-archives/{name}``      a ``.tar.gz`` model archive as the next version (maintainer)
``GET  /v1/models/{name}/archive``      a version (``?version=``, default serving) as a model archive
``PUT  /v1/datasets/{name}``            a ``.tar.gz`` labelled MSD-layout folder as training data (maintainer)

The server pulls only from its own catalogue (``$UQSEG_CATALOGUE`` or the shipped one), never from a URL a
client sends. Archive uploads have the image-upload body cap (``server.security``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from napari_uqseg.server import model_library
from napari_uqseg.server.access import actor, require_maintainer
from napari_uqseg.server.routes.requests import RequestBody, ServiceDep, json_model, ok

ARCHIVE_MEDIA = "application/gzip"
MAINTAINER = [Depends(require_maintainer)]  # changing what serves, adding models or training data

router = APIRouter(tags=["models"])


class PromoteRequest(RequestBody):
    version: str  # like "v2"


class PullRequest(RequestBody):
    entry: str | None = None  # catalogue entry; default: the model name in the path


@router.get("/models")
def models(service: ServiceDep) -> JSONResponse:
    return ok([m.to_dict() for m in service.models()])


@router.get("/models/{name}")
def model(name: str, service: ServiceDep) -> JSONResponse:
    return ok(service.model(name).to_dict())


@router.get("/models/{name}/versions")
def versions(name: str, service: ServiceDep) -> JSONResponse:
    return ok([v.to_dict() for v in service.model(name).versions])


@router.post("/models/{name}/promote", dependencies=MAINTAINER)
def promote(
    name: str,
    body: Annotated[PromoteRequest, Depends(json_model(PromoteRequest))],
    request: Request,
    service: ServiceDep,
) -> JSONResponse:
    return ok(service.promote(name, body.version, actor(request)).to_dict())


@router.post("/models/{name}/rollback", dependencies=MAINTAINER)
def rollback(name: str, request: Request, service: ServiceDep) -> JSONResponse:
    return ok(service.rollback(name, actor(request)).to_dict())


@router.get("/catalogue")
def catalogue() -> JSONResponse:
    return ok([e.to_dict() for e in model_library.catalogue()])


@router.post("/models/{name}/pull", dependencies=MAINTAINER)
def pull(
    name: str, body: Annotated[PullRequest, Depends(json_model(PullRequest))], service: ServiceDep
) -> JSONResponse:
    return ok(model_library.pull_model(service, body.entry or name, name).to_dict(), 201)


@router.put("/model-archives/{name}", dependencies=MAINTAINER)
async def import_archive(name: str, request: Request, service: ServiceDep) -> JSONResponse:
    data = await request.body()
    return ok((await run_in_threadpool(model_library.import_model_bytes, service, name, data)).to_dict(), 201)


@router.get("/models/{name}/archive")
def export(name: str, service: ServiceDep, version: str | None = None) -> FileResponse:
    tmp = Path(tempfile.mkdtemp(prefix="export.", dir=service.store.root))
    try:
        archive = model_library.export_model(service, name, version, tmp / f"{name}.tar.gz")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    cleanup = BackgroundTask(shutil.rmtree, tmp, ignore_errors=True)
    return FileResponse(archive, media_type=ARCHIVE_MEDIA, filename=archive.name, background=cleanup)


@router.put("/datasets/{name}", dependencies=MAINTAINER)
async def dataset(name: str, request: Request, service: ServiceDep) -> JSONResponse:
    data = await request.body()
    folder = await run_in_threadpool(model_library.add_dataset_bytes, service, name, data)
    return ok({"dataset": folder.name}, 201)
