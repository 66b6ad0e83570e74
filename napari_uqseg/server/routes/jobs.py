"""Jobs: fine-tune, train, evaluate and triage in the background; their status, long poll and event stream.

``POST /v1/jobs``                               ``{kind, model, params?, client_key?}`` -> status (202)
``GET  /v1/jobs``                               every job's status
``GET  /v1/jobs/{jid}?wait=S``                  status; with ``wait`` (seconds, at most 30) the answer comes as
                                                soon as the job is finished, or after ``S`` seconds (long poll)
``GET  /v1/jobs/{jid}/events``                  ``text/event-stream``: one ``status`` event per change, until the
                                                job is finished
``POST /v1/jobs/{jid}/cancel``                  ask the job to stop
``GET  /v1/jobs/{jid}/worklist``                the worklist a finished triage job wrote
``GET  /v1/jobs/{jid}/worklist/{case}/{name}``  one triaged case's image, review (JSON) or output volume
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from napari_uqseg.core.json_values import clean_json
from napari_uqseg.core.records import JobStatus
from napari_uqseg.server.access import MAINTAINER_JOBS, actor, require_maintainer
from napari_uqseg.server.routes.requests import NIFTI_MEDIA, RequestBody, ServiceDep, json_model, ok
from napari_uqseg.server.service import Service

#: longest long poll (seconds); how often a waiting request and the event stream look at the ledger
MAX_WAIT_S = 30.0
LONG_POLL_STEP_S = 0.25
EVENT_STEP_S = 0.5

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobRequest(RequestBody):
    kind: str  # server.job_runner.JOB_KINDS
    model: str
    params: dict[str, Any] | None = None  # checked per kind by server.job_params
    client_key: str | None = None


@router.post("")
def start_job(
    body: Annotated[JobRequest, Depends(json_model(JobRequest))], request: Request, service: ServiceDep
) -> JSONResponse:
    if body.kind in MAINTAINER_JOBS:
        require_maintainer(request)
    status = service.start_job(body.kind, body.model, body.params or {}, body.client_key, actor(request))
    return ok(status.to_dict(), 202)


@router.get("")
def jobs(service: ServiceDep) -> JSONResponse:
    return ok([j.to_dict() for j in service.jobs()])


async def wait_for_job(service: Service, jid: str, timeout: float) -> JobStatus:
    """The job's status once finished, or after ``timeout`` seconds: sleeps on the event loop, reads in a thread."""
    deadline = time.monotonic() + max(0.0, timeout)
    status = await run_in_threadpool(service.job, jid)
    while not status.finished and time.monotonic() < deadline:
        await asyncio.sleep(min(LONG_POLL_STEP_S, max(0.0, deadline - time.monotonic())))
        status = await run_in_threadpool(service.job, jid)
    return status


@router.get("/{jid}")
async def job(jid: str, service: ServiceDep, wait: float = 0.0) -> JSONResponse:
    """Async so that a long poll holds no worker thread while it waits."""
    status = await wait_for_job(service, jid, min(max(wait, 0.0), MAX_WAIT_S))
    return ok(status.to_dict())


async def status_events(service: Service, jid: str) -> AsyncIterator[bytes]:
    """Server-sent ``status`` events: the first status, then each change, the last one finished."""
    last = None
    while True:
        status = await run_in_threadpool(service.job, jid)
        if status != last:
            yield f"event: status\ndata: {json.dumps(clean_json(status.to_dict()))}\n\n".encode()
            last = status
        if status.finished:
            return
        await asyncio.sleep(EVENT_STEP_S)


@router.get("/{jid}/events")
async def events(jid: str, service: ServiceDep) -> StreamingResponse:
    await run_in_threadpool(service.job, jid)  # 404 before the stream starts
    headers = {"Cache-Control": "no-cache"}
    return StreamingResponse(status_events(service, jid), media_type="text/event-stream", headers=headers)


@router.post("/{jid}/cancel")
def cancel(jid: str, service: ServiceDep) -> JSONResponse:
    return ok(service.cancel_job(jid).to_dict())


@router.get("/{jid}/worklist")
def worklist(jid: str, service: ServiceDep) -> JSONResponse:
    return ok(service.worklist(jid))


@router.get("/{jid}/worklist/{case}/{name}")
def worklist_file(jid: str, case: str, name: str, service: ServiceDep) -> FileResponse:
    media = "application/json" if name == "review" else NIFTI_MEDIA
    return FileResponse(service.worklist_file(jid, case, name), media_type=media)
