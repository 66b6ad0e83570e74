"""DICOM operations of the server, without HTTP: zip uploads, PACS listings, predict-by-UID and STOW-RS of results.

A DICOM series becomes an ordinary stored image (uncompressed NIfTI under its sha256), so predictions,
corrections and fine-tuning work on it exactly as on an uploaded NIfTI file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import napari_uqseg
from napari_uqseg.core.dicom_objects import Provenance, parametric_map_object, segmentation_object
from napari_uqseg.core.dicom_series import DicomSeries, read_dicom_zip, series_from_datasets
from napari_uqseg.core.errors import InputError, NotFoundError
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.wire import SHA256_PATTERN, check_id, sha256_hex
from napari_uqseg.server.data_dir import safe_path
from napari_uqseg.server.dicomweb import PacsGateway, check_uid
from napari_uqseg.server.service import Service

#: series of these modalities are results or documents, never scans to segment
NON_IMAGE_MODALITIES = frozenset({"SEG", "SR", "PR", "KO", "RTSTRUCT", "RTPLAN", "RTDOSE", "DOC", "OT", "REG"})
#: studies one triage request may name (it runs synchronously, one series after the other)
MAX_TRIAGE_STUDIES = 50
NO_PACS = "this server has no PACS; start it with `uqseg serve --dicomweb URL`"


class DicomService:
    """DICOM input and output around a :class:`Service`.

    Parameters
    ----------
    service : Service
        Stores images and runs predictions.
    pacs : PacsGateway or None
        The DICOMweb endpoint of ``uqseg serve --dicomweb``; ``None`` leaves only zip uploads.
    """

    def __init__(self, service: Service, pacs: PacsGateway | None = None) -> None:
        self.service = service
        self.pacs = pacs

    def _gateway(self) -> PacsGateway:
        if self.pacs is None:
            raise InputError("dicomweb", NO_PACS)
        return self.pacs

    def store_series(self, series: DicomSeries) -> dict[str, Any]:
        """Keep the series' volume as a stored image; returns ``{image, shape, affine, created, series}``."""
        data = nifti_bytes(series.volume, compress=False)  # uncompressed: the same series gives the same sha256
        sha = sha256_hex(data)
        result = self.service.put_image(sha, data)
        return {**result, "affine": series.volume.affine.tolist(), "series": series.series_uid}

    def image_path(self, sha: str) -> Path:
        """File of a stored image (NotFoundError if there is none)."""
        path = safe_path(self.service.store.root / "images", check_id(sha, "image sha256", SHA256_PATTERN))
        if not path.is_file():
            raise NotFoundError("image", f"no image {sha[:12]}...")
        return path

    def upload_zip(self, data: bytes, max_bytes: int) -> dict[str, Any]:
        """A zipped DICOM series (request body) as a stored image; see :meth:`store_series`."""
        return self.store_series(read_dicom_zip(data, "zip", max_bytes))

    def upload_zip_file(self, path: Path, max_bytes: int) -> dict[str, Any]:
        """Like :meth:`upload_zip` for a body streamed to ``path`` (read member by member; the file is removed)."""
        try:
            with open(path, "rb") as fh:
                return self.store_series(read_dicom_zip(fh, "zip", max_bytes))
        finally:
            path.unlink(missing_ok=True)

    def studies(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        if not (isinstance(limit, int) and 1 <= limit <= 1000 and isinstance(offset, int) and offset >= 0):
            raise InputError("limit", "limit must be in [1, 1000] and offset >= 0")
        return self._gateway().studies(limit, offset)

    def series(self, study: str) -> list[dict[str, Any]]:
        return self._gateway().series(study)

    def predict_series(
        self,
        study: str,
        series: str,
        model: str,
        version: str | None = None,
        options: dict[str, Any] | None = None,
        store: bool = True,
    ) -> dict[str, Any]:
        """Fetch a series from the PACS, predict it and (``store``) send the SEG and parametric maps back.

        Returns
        -------
        dict
            ``{"prediction": <prediction summary>, "study", "series", "stored": bool,
            "segmentation": {"series", "sop"}, "maps": [{"name", "series", "sop"}]}``.
        """
        gateway = self._gateway()
        check_uid(study, "study")
        check_uid(series, "series")
        self.service.model(model)  # an unknown model is a 404 before the series is fetched
        source = series_from_datasets(gateway.retrieve_series(study, series), f"series {series}")
        image = self.store_series(source)["image"]
        summary, prediction = self.service.run_prediction(image, model, version, options)
        provenance = Provenance(model, summary["version"], summary["method"], napari_uqseg.__version__)
        labels = summary.get("labels") or {}
        objects = [("mask", segmentation_object(source, prediction.mask, labels, provenance))]
        for number, (name, volume) in enumerate(sorted(prediction.maps.items())):
            objects.append((name, parametric_map_object(source, volume, name, provenance, 902 + number)))
        if store:
            gateway.store([ds for _, ds in objects])
        described = [
            {"name": name, "series": str(ds.SeriesInstanceUID), "sop": str(ds.SOPInstanceUID)} for name, ds in objects
        ]
        return {
            "prediction": summary,
            "study": study,
            "series": series,
            "stored": store,
            "segmentation": {k: v for k, v in described[0].items() if k != "name"},
            "maps": described[1:],
        }

    def triage(
        self, studies: list[str], model: str, version: str | None = None, store: bool = True
    ) -> list[dict[str, Any]]:
        """Predict every image series of ``studies`` and rank them by the review map's case score, highest first.

        A series that cannot be read is listed with its ``error`` (and ranks last) instead of failing the batch.

        Returns
        -------
        list of dict
            ``{"study", "series", "case_score", "prediction", "segmentation"}`` or ``{"study", "series", "error"}``.
        """
        if not isinstance(studies, list) or not 0 < len(studies) <= MAX_TRIAGE_STUDIES:
            raise InputError("studies", f"must be a list of 1 to {MAX_TRIAGE_STUDIES} study UIDs")
        for study in studies:
            check_uid(study, "studies")
        rows: list[dict[str, Any]] = []
        for study in studies:
            for entry in self.series(study):
                if entry.get("Modality") in NON_IMAGE_MODALITIES:
                    continue
                series = entry["SeriesInstanceUID"]
                try:
                    answer = self.predict_series(study, series, model, version, None, store)
                except InputError as exc:
                    if exc.source in ("model", "version"):
                        raise  # the request is wrong, not the series
                    rows.append({"study": study, "series": series, "error": str(exc)})
                    continue
                rows.append(
                    {
                        "study": study,
                        "series": series,
                        "case_score": answer["prediction"]["review"]["case_score"],
                        "prediction": answer["prediction"]["id"],
                        "segmentation": answer["segmentation"],
                    }
                )
        return sorted(rows, key=lambda r: -r["case_score"] if "case_score" in r else float("inf"))
