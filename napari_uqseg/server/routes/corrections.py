"""Corrections: a corrected label map for a prediction's image, stored durably before the answer.

``POST /v1/corrections``  ``{prediction, label (base64 NIfTI), client_key?, review?, reviewed?}`` -> ``{id, created}``
(201 when stored, 200 when ``client_key`` names one stored before: a retry stores nothing twice).
``reviewed``: base64 NIfTI 0/1 mask of the voxels a person reviewed (``core.reviewed``); absent: the whole case.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from napari_uqseg.server.access import actor
from napari_uqseg.server.routes.requests import RequestBody, ServiceDep, json_model, ok

router = APIRouter(prefix="/corrections", tags=["corrections"])


class CorrectionRequest(RequestBody):
    prediction: str  # prediction id
    label: str  # base64 text of gzip NIfTI uint8 label map on the prediction's grid
    client_key: str | None = None
    review: dict[str, Any] | None = None  # ReviewRanking.to_dict() with the reviewer's region states
    reviewed: str | None = None  # base64 gzip NIfTI 0/1 uint8 mask on the prediction's grid; None: whole case


@router.post("")
def correction(
    body: Annotated[CorrectionRequest, Depends(json_model(CorrectionRequest))], request: Request, service: ServiceDep
) -> JSONResponse:
    cid, created = service.submit_correction(
        body.prediction, body.label, body.client_key, body.review, actor(request), body.reviewed
    )
    return ok({"id": cid, "created": created}, 201 if created else 200)
