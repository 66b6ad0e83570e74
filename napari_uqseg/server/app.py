"""The FastAPI app of protocol v1: thin HTTP adapters over ``server.service.Service``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from napari_uqseg.core.errors import ConflictError, InputError, NotFoundError
from napari_uqseg.core.wire import PROTOCOL_VERSION
from napari_uqseg.server.access import MAINTAINER_JOBS, ForbiddenError, actor, require_maintainer, user_of
from napari_uqseg.server.disk_guard import StorageFullError, is_disk_full
from napari_uqseg.server.load_limits import BusyError, ConcurrencyLimitMiddleware
from napari_uqseg.server.model_routes import add_model_routes
from napari_uqseg.server.request_guard import MediaTypeError, RequestGuardMiddleware, is_json_type, log_unexpected
from napari_uqseg.server.saturation import wait_job_async
from napari_uqseg.server.security import BodyLimitMiddleware
from napari_uqseg.server.service import Service, json_safe
from napari_uqseg.server.uploads import receive_upload
from napari_uqseg.server.users import LOCAL_USER, Users, audit_log

NIFTI_MEDIA = "application/octet-stream"
MiB = 1024 * 1024


class AuthError(Exception):
    """Missing or wrong bearer token (HTTP 401)."""


def error_response(status: int, code: str, source: str, message: str) -> JSONResponse:
    """The one error body of protocol v1: ``{"error": {status, code, source, message}, "protocol"}``."""
    body = {
        "error": {"status": status, "code": code, "source": source, "message": message},
        "protocol": PROTOCOL_VERSION,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def ok(content: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(json_safe(content), status_code=status)


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; InputError for anything else, MediaTypeError unless typed JSON."""
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

    app = FastAPI(
        title="napari-uqseg",
        version=str(PROTOCOL_VERSION),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the protocol is documented in docs/; no schema for anonymous callers
    )
    app.add_middleware(BodyLimitMiddleware, upload_limit=upload_limit, json_limit=json_limit)
    app.add_middleware(RequestGuardMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(ConcurrencyLimitMiddleware, counter=service.requests, retry_after=service.load.retry_after_s)
    service.limits.update({"max_upload_bytes": upload_limit, "max_json_bytes": json_limit})

    @app.exception_handler(InputError)
    async def input_error(_: Request, exc: InputError) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return error_response(404, "not_found", exc.source, exc.problem)
        if isinstance(exc, ConflictError):
            return error_response(409, "conflict", exc.source, exc.problem)
        return error_response(400, "bad_input", exc.source, exc.problem)

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, exc: AuthError) -> JSONResponse:
        return error_response(401, "unauthorized", "Authorization", str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return error_response(
            400, "bad_input", ".".join(str(p) for p in first.get("loc", ())), str(first.get("msg", exc))
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), "request", str(exc.detail))

    @app.exception_handler(MediaTypeError)
    async def media_type_error(_: Request, exc: MediaTypeError) -> JSONResponse:
        return error_response(415, "unsupported_media_type", exc.source, exc.problem)

    @app.exception_handler(BusyError)
    async def busy(_: Request, exc: BusyError) -> JSONResponse:
        response = error_response(503, "busy", exc.source, exc.problem)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(StorageFullError)
    async def storage_full(_: Request, exc: StorageFullError) -> JSONResponse:
        return error_response(507, "insufficient_storage", exc.source, exc.problem)

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.Error)
    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # OSError and sqlite3.Error get their own registration so that a full disk is answered without the
        # re-raise (and closed connection) of the catch-all Exception handler
        if is_disk_full(exc):  # ENOSPC met by a write, or SQLite's "disk is full": nothing was acknowledged
            return error_response(507, "insufficient_storage", "disk", "the server's disk is full; nothing was stored")
        ref = log_unexpected(request, exc)  # traceback to the server log; no paths or PHI to the caller
        return error_response(500, "server_error", "server", f"internal error (reference {ref} in the server log)")

    @app.exception_handler(ForbiddenError)
    async def forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return error_response(403, "forbidden", exc.source, exc.problem)

    users = Users(service.store.ledger)
    if token is not None:
        users.ensure_owner(token)  # the server's own token is the maintainer "owner"'s

    async def require_token(request: Request) -> None:
        request.state.user = LOCAL_USER if token is None else user_of(request, users)
        if request.state.user is None:
            raise AuthError("missing or wrong bearer token (see the token file in the server's data folder)")

    @app.get("/v1/health")
    async def health() -> JSONResponse:
        return ok(service.health())

    api = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])

    @api.get("/capabilities")
    async def capabilities() -> JSONResponse:
        return ok(await run_in_threadpool(service.capabilities))

    @api.put("/images/{sha}")
    async def put_image(sha: str, request: Request) -> JSONResponse:
        service.store.ensure_free(int(request.headers.get("content-length") or 0))
        upload, digest = await receive_upload(request, service.store.root / "images")  # streamed to disk
        result = await run_in_threadpool(service.put_image_file, sha, upload, digest)
        return ok(result, 201 if result["created"] else 200)

    @api.post("/predictions")
    async def predict(request: Request) -> JSONResponse:
        body = await json_body(request)
        unknown = set(body) - {"image", "model", "version", "options"}
        if unknown:
            raise InputError("body", f"unknown field(s) {sorted(unknown)}")
        for key in ("image", "model"):
            if not isinstance(body.get(key), str):
                raise InputError(key, "is required and must be a string")
        if body.get("version") is not None and not isinstance(body["version"], str):
            raise InputError("version", "must be a string like 'v2'")
        if not isinstance(body.get("options", {}), dict):
            raise InputError("options", "must be an object")
        result = await run_in_threadpool(
            service.predict, body["image"], body["model"], body.get("version"), body.get("options")
        )
        return ok(result, 201)

    @api.get("/predictions/{pid}")
    async def prediction(pid: str) -> JSONResponse:
        return ok(await run_in_threadpool(service.prediction, pid))

    @api.get("/predictions/{pid}/outputs/{name}")
    async def output(pid: str, name: str, dtype: str = "uint8") -> Response:
        path = await run_in_threadpool(service.output, pid, name, dtype)
        return FileResponse(path, media_type=NIFTI_MEDIA, headers={"X-UQSeg-Format": "nifti1+gzip"})

    @api.post("/corrections")
    async def correction(request: Request) -> JSONResponse:
        body = await json_body(request)
        unknown = set(body) - {"prediction", "label", "client_key", "review"}
        if unknown:
            raise InputError("body", f"unknown field(s) {sorted(unknown)}")
        if not isinstance(body.get("prediction"), str) or not isinstance(body.get("label"), str):
            raise InputError("body", "'prediction' (id) and 'label' (base64 NIfTI) are required strings")
        key = body.get("client_key")
        if key is not None and not isinstance(key, str):
            raise InputError("client_key", "must be a string")
        cid, created = await run_in_threadpool(
            service.submit_correction, body["prediction"], body["label"], key, body.get("review"), actor(request)
        )
        return ok({"id": cid, "created": created}, 201 if created else 200)

    @api.get("/models")
    async def models() -> JSONResponse:
        return ok([m.to_dict() for m in await run_in_threadpool(service.models)])

    @api.get("/models/{name}")
    async def model(name: str) -> JSONResponse:
        return ok((await run_in_threadpool(service.model, name)).to_dict())

    @api.get("/models/{name}/versions")
    async def versions(name: str) -> JSONResponse:
        return ok([v.to_dict() for v in (await run_in_threadpool(service.model, name)).versions])

    @api.post("/models/{name}/promote", dependencies=[Depends(require_maintainer)])
    async def promote(name: str, request: Request) -> JSONResponse:
        body = await json_body(request)
        if not isinstance(body.get("version"), str):
            raise InputError("version", "is required and must be a string like 'v2'")
        return ok((await run_in_threadpool(service.promote, name, body["version"], actor(request))).to_dict())

    @api.post("/models/{name}/rollback", dependencies=[Depends(require_maintainer)])
    async def rollback(name: str, request: Request) -> JSONResponse:
        return ok((await run_in_threadpool(service.rollback, name, actor(request))).to_dict())

    @api.get("/audit", dependencies=[Depends(require_maintainer)])
    async def audit(limit: int = 1000, action: str | None = None) -> JSONResponse:
        return ok(await run_in_threadpool(audit_log, service.store.ledger, min(max(limit, 1), 10000), action))

    @api.post("/jobs")
    async def start_job(request: Request) -> JSONResponse:
        body = await json_body(request)
        unknown = set(body) - {"kind", "model", "params", "client_key"}
        if unknown:
            raise InputError("body", f"unknown field(s) {sorted(unknown)}")
        if not isinstance(body.get("kind"), str) or not isinstance(body.get("model"), str):
            raise InputError("body", "'kind' and 'model' are required strings")
        key = body.get("client_key")
        if key is not None and not isinstance(key, str):
            raise InputError("client_key", "must be a string")
        if body["kind"] in MAINTAINER_JOBS:
            require_maintainer(request)
        status = await run_in_threadpool(
            service.start_job, body["kind"], body["model"], body.get("params") or {}, key, actor(request)
        )
        return ok(status.to_dict(), 202)

    @api.get("/jobs")
    async def jobs() -> JSONResponse:
        return ok([j.to_dict() for j in await run_in_threadpool(service.jobs)])

    @api.get("/jobs/{jid}")
    async def job(jid: str, wait: float = 0.0) -> JSONResponse:
        # long poll: ?wait=S returns as soon as the job is finished, or after S seconds (<= 30)
        status = await wait_job_async(service, jid, min(max(wait, 0.0), 30.0))  # sleeps off the worker threads
        return ok(status.to_dict())

    @api.post("/jobs/{jid}/cancel")
    async def cancel(jid: str) -> JSONResponse:
        return ok((await run_in_threadpool(service.cancel_job, jid)).to_dict())

    @api.get("/jobs/{jid}/worklist")
    async def worklist(jid: str) -> JSONResponse:
        return ok(await run_in_threadpool(service.worklist, jid))

    @api.get("/jobs/{jid}/worklist/{case}/{name}")
    async def worklist_file(jid: str, case: str, name: str) -> Response:
        path = await run_in_threadpool(service.worklist_file, jid, case, name)
        media = "application/json" if name == "review" else NIFTI_MEDIA
        return FileResponse(path, media_type=media)

    @api.get("/jobs/{jid}/events")
    async def events(jid: str) -> StreamingResponse:
        service.job(jid)  # 404 before the stream starts

        async def stream() -> AsyncIterator[bytes]:
            last = None
            while True:
                status = await run_in_threadpool(service.job, jid)
                if status != last:
                    yield f"event: status\ndata: {json.dumps(json_safe(status.to_dict()))}\n\n".encode()
                    last = status
                if status.finished:
                    return
                await asyncio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    from napari_uqseg.server.dicom_routes import install_dicom_routes  # DICOM zip uploads and the PACS

    install_dicom_routes(app, api, service, upload_limit)
    add_model_routes(api, service)  # catalogue, pull, import, export, datasets
    app.include_router(api)
    return app
