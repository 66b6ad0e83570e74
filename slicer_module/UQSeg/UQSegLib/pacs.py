"""Pick a series from the server's PACS and segment it there, without Slicer (arrays in Slicer's KJI order).

The server (``uqseg serve --dicomweb``) fetches the series, predicts it and stores the DICOM SEG and parametric
maps back in the PACS; this module brings the series and the result into Slicer's array order so the widget can
show them like any other result. Choices show study date, description and accession number, never the patient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .logic import SegmentationResult, UQSegSession


def _line(parts: list[Any], count: Any, unit: str) -> str:
    text = " · ".join(str(p) for p in parts if p not in (None, "", []))
    return text + (f" ({count} {unit})" if count else "")


def study_choices(session: UQSegSession, limit: int = 200) -> list[tuple[str, str]]:
    """``(label, StudyInstanceUID)`` per study of the server's PACS."""
    out = []
    for study in session.backend.pacs_studies(limit=limit):
        modalities = "/".join(study.get("ModalitiesInStudy") or [])
        parts = [study.get("StudyDate"), study.get("StudyDescription"), study.get("AccessionNumber"), modalities]
        label = _line(parts, study.get("NumberOfStudyRelatedSeries"), "series")
        out.append((label or study["StudyInstanceUID"], study["StudyInstanceUID"]))
    return out


def series_choices(session: UQSegSession, study: str) -> list[tuple[str, str]]:
    """``(label, SeriesInstanceUID)`` per series of one study."""
    out = []
    for series in session.backend.pacs_series(study):
        parts = [series.get("Modality"), series.get("SeriesNumber"), series.get("SeriesDescription")]
        label = _line(parts, series.get("NumberOfSeriesRelatedInstances"), "images")
        out.append((label or series["SeriesInstanceUID"], series["SeriesInstanceUID"]))
    return out


def segment_pacs_series(
    session: UQSegSession,
    study: str,
    series: str,
    model: str,
    version: str | None = None,
    store: bool = True,
) -> tuple[np.ndarray, np.ndarray, SegmentationResult, dict[str, Any]]:
    """Predict a PACS series on the server; returns ``(image_kji, ijk_to_ras, result, answer)``.

    ``image_kji`` and ``ijk_to_ras`` make the volume node (``slicer.util.addVolumeFromArray``); ``result`` is on
    its grid; ``answer`` holds the UIDs of the SEG and parametric maps stored in the PACS.
    """
    backend = session.backend
    answer = backend.predict_pacs_series(study, series, model, version, {"axis": 2}, store)
    image = backend.stored_image(answer["prediction"]["image"])
    image_kji = np.ascontiguousarray(image.array.transpose(2, 1, 0))
    result = session.result_on_grid(backend.prediction_result(answer["prediction"]), image, image_kji.shape)
    return image_kji, image.affine, result, answer
