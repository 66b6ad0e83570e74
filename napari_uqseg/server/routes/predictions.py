"""Predictions: segment a stored image with a model version, then fetch the summary and the output volumes.

``POST /v1/predictions``                      ``{image, model, version?, options?}`` -> summary (201)
``GET  /v1/predictions/{pid}``                the summary again
``GET  /v1/predictions/{pid}/outputs/{name}`` one output as gzip NIfTI (``?dtype=float32`` if it was kept;
                                              ``?box=i0:i1,j0:j1,k0:k1``: that box only, ``server.output_crop``)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import Field

from napari_uqseg.server.output_crop import cropped_output
from napari_uqseg.server.routes.requests import NIFTI_MEDIA, RequestBody, ServiceDep, json_model, ok

router = APIRouter(prefix="/predictions", tags=["predictions"])


class PredictionRequest(RequestBody):
    image: str  # sha256 of a stored image
    model: str
    version: str | None = None  # default: the serving version
    options: dict[str, Any] = Field(default_factory=dict)  # checked by the service (``PREDICT_OPTIONS``)


@router.post("")
def predict(
    body: Annotated[PredictionRequest, Depends(json_model(PredictionRequest))], service: ServiceDep
) -> JSONResponse:
    return ok(service.predict(body.image, body.model, body.version, body.options), 201)


@router.get("/{pid}")
def prediction(pid: str, service: ServiceDep) -> JSONResponse:
    return ok(service.prediction(pid))


@router.get("/{pid}/outputs/{name}")
def output(pid: str, name: str, service: ServiceDep, dtype: str = "uint8", box: str | None = None) -> Response:
    path = service.output(pid, name, dtype)
    if box is None:
        return FileResponse(path, media_type=NIFTI_MEDIA, headers={"X-UQSeg-Format": "nifti1+gzip"})
    data, headers = cropped_output(path, name, box)
    return Response(data, media_type=NIFTI_MEDIA, headers={"X-UQSeg-Format": "nifti1+gzip", **headers})
