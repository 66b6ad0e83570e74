"""The server's PACS (``uqseg serve --dicomweb URL``): browse it, predict a series by UID, triage studies.

``GET  /v1/pacs/studies``                 studies (``?limit=&offset=``)
``GET  /v1/pacs/studies/{study}/series``  series of one study
``POST /v1/pacs/predictions``             ``{study, series, model, version?, options?, store?}``: predict by UID
                                          and store the SEG and parametric maps in the PACS (STOW-RS)
``POST /v1/pacs/triage``                  ``{studies, model, version?, store?}``: predict every image series of the
                                          studies, ranked by uncertainty (synchronous; at most 50 studies)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from napari_uqseg.server.routes.requests import DicomDep, RequestBody, json_model, ok

router = APIRouter(prefix="/pacs", tags=["pacs"])


class SeriesPredictionRequest(RequestBody):
    study: str  # DICOM UIDs
    series: str
    model: str
    version: str | None = None
    options: dict[str, Any] | None = None
    store: bool = True  # STOW-RS the results back into the PACS


class TriageRequest(RequestBody):
    studies: list[str]
    model: str
    version: str | None = None
    store: bool = True


@router.get("/studies")
def studies(dicom: DicomDep, limit: int = 100, offset: int = 0) -> JSONResponse:
    return ok(dicom.studies(limit, offset))


@router.get("/studies/{study}/series")
def series(study: str, dicom: DicomDep) -> JSONResponse:
    return ok(dicom.series(study))


@router.post("/predictions")
def predict(
    body: Annotated[SeriesPredictionRequest, Depends(json_model(SeriesPredictionRequest))], dicom: DicomDep
) -> JSONResponse:
    arguments = (body.study, body.series, body.model, body.version, body.options or {}, body.store)
    return ok(dicom.predict_series(*arguments), 201)


@router.post("/triage")
def triage(body: Annotated[TriageRequest, Depends(json_model(TriageRequest))], dicom: DicomDep) -> JSONResponse:
    return ok(dicom.triage(body.studies, body.model, body.version, body.store))
