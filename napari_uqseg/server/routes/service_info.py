"""What the server is and what it holds: health (no token), capabilities, and the audit log (maintainer).

``GET /v1/health``        protocol, version and saturation; answered without a token
``GET /v1/capabilities``  device, methods, models, limits, job kinds, prediction options
``GET /v1/audit``         who did what (``?limit=&action=``; maintainer)
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from napari_uqseg.server.access import require_maintainer
from napari_uqseg.server.routes.requests import ServiceDep, ok
from napari_uqseg.server.users import audit_log

MAX_AUDIT_ROWS = 10000

health_router = APIRouter(tags=["service"])  # mounted without the token guard
router = APIRouter(tags=["service"])


@health_router.get("/health")
def health(service: ServiceDep) -> JSONResponse:
    return ok(service.health())


@router.get("/capabilities")
def capabilities(service: ServiceDep) -> JSONResponse:
    return ok(service.capabilities())


@router.get("/audit", dependencies=[Depends(require_maintainer)])
def audit(service: ServiceDep, limit: int = 1000, action: str | None = None) -> JSONResponse:
    return ok(audit_log(service.store.ledger, min(max(limit, 1), MAX_AUDIT_ROWS), action))
