"""The FastAPI app of protocol v1: middleware, error handlers and the resource routers of ``server.routes``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from napari_uqseg.core.wire import PROTOCOL_VERSION
from napari_uqseg.server.access import token_guard
from napari_uqseg.server.dicom_service import DicomService
from napari_uqseg.server.error_handlers import install_error_handlers
from napari_uqseg.server.load_limits import ConcurrencyLimitMiddleware
from napari_uqseg.server.request_guard import RequestGuardMiddleware
from napari_uqseg.server.routes import RESOURCE_ROUTERS, service_info
from napari_uqseg.server.security import BodyLimitMiddleware
from napari_uqseg.server.service import Service
from napari_uqseg.server.users import Users

MiB = 1024 * 1024


def create_app(
    service: Service,
    token: str | None,
    upload_limit: int = 2048 * MiB,
    json_limit: int = 64 * MiB,
    allowed_hosts: Iterable[str] | None = None,
) -> FastAPI:
    """Build the app around ``service``.

    Parameters
    ----------
    token : str or None
        Bearer token every route but ``/v1/health`` requires (``None`` only for loopback ``--no-auth``).
    upload_limit, json_limit : int
        Request body caps in bytes for image uploads and for every other route.
    allowed_hosts : iterable of str or None
        ``Host`` names answered (``server.request_guard``); ``None`` answers any host.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(service.close)

    # no OpenAPI schema or docs pages: the protocol is documented in docs/, not shown to anonymous callers
    app = FastAPI(
        title="napari-uqseg",
        version=str(PROTOCOL_VERSION),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BodyLimitMiddleware, upload_limit=upload_limit, json_limit=json_limit)
    app.add_middleware(RequestGuardMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(ConcurrencyLimitMiddleware, counter=service.requests, retry_after=service.load.retry_after_s)
    install_error_handlers(app)
    service.limits.update({"max_upload_bytes": upload_limit, "max_json_bytes": json_limit})
    app.state.service, app.state.dicom = service, DicomService(service, service.pacs)
    users = Users(service.store.ledger)
    if token is not None:
        users.ensure_owner(token)  # the server's own token is the maintainer "owner"'s
    api = APIRouter(prefix="/v1", dependencies=[Depends(token_guard(token, users))])
    for router in RESOURCE_ROUTERS:
        api.include_router(router)
    app.include_router(service_info.health_router, prefix="/v1")
    app.include_router(api)
    return app
