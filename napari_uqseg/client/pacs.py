"""DICOM methods of ``RemoteBackend``: zip uploads of a DICOM series and the server's PACS (protocol v1)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from napari_uqseg.client.backend import PredictionResult
from napari_uqseg.client.payloads import prediction_from_wire
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import image_from_bytes
from napari_uqseg.core.volume import Volume


def zip_series(path: str | Path) -> bytes:
    """A DICOM series folder (its files, not sub-folders) or an existing ``.zip`` file as zip bytes."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return path.read_bytes()
    if not path.is_dir():
        raise InputError(str(path), "expected a folder of DICOM files or a .zip of one series")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(p for p in path.iterdir() if p.is_file()):
            archive.write(file, file.name)
    return buffer.getvalue()


class PacsMethods:
    """Mixed into ``RemoteBackend`` (uses its ``_json``); every method is one request to the server."""

    if TYPE_CHECKING:  # provided by RemoteBackend; declared here for type checkers only

        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def _request(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def output(self, prediction_id: str, name: str, dtype: str = "uint8") -> bytes: ...

    def prediction_result(self, summary: dict[str, Any]) -> PredictionResult:
        """Download every output of a prediction summary (e.g. ``predict_pacs_series(...)["prediction"]``)."""
        return prediction_from_wire(summary, {name: self.output(summary["id"], name) for name in summary["outputs"]})

    def stored_image(self, sha: str) -> Volume:
        """An image the server keeps (e.g. a PACS series it predicted), as a float32 volume."""
        return image_from_bytes(self._request("GET", f"/v1/images/{quote(sha, safe='')}").content, "image")

    def upload_dicom_series(self, series: str | Path | bytes) -> dict[str, Any]:
        """Upload a DICOM series (folder, ``.zip`` file or zip bytes); the server keeps it as an image.

        Returns
        -------
        dict
            ``{"image": sha256, "shape", "affine", "created", "series"}``; pass ``image`` on to predictions.
        """
        data = series if isinstance(series, bytes) else zip_series(series)
        return self._json("POST", "/v1/images/dicom", data=data, headers={"Content-Type": "application/zip"})

    def pacs_studies(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Studies of the server's PACS: UID, date, description, accession number, modalities, series count."""
        return self._json("GET", "/v1/pacs/studies", params={"limit": limit, "offset": offset})

    def pacs_series(self, study: str) -> list[dict[str, Any]]:
        """Series of one study: UID, modality, number, description, instance count."""
        return self._json("GET", f"/v1/pacs/studies/{quote(study, safe='')}/series")

    def predict_pacs_series(
        self,
        study: str,
        series: str,
        model: str,
        version: str | None = None,
        options: dict[str, Any] | None = None,
        store: bool = True,
    ) -> dict[str, Any]:
        """Have the server fetch a series by UID, predict it and store the SEG and maps in the PACS.

        Returns
        -------
        dict
            ``{"prediction": summary, "study", "series", "stored", "segmentation": {"series", "sop"},
            "maps": [{"name", "series", "sop"}]}``; the prediction's NIfTI outputs stay downloadable.
        """
        body = {"study": study, "series": series, "model": model, "version": version, "options": options or {}}
        return self._json("POST", "/v1/pacs/predictions", json={**body, "store": store})

    def triage_pacs_studies(
        self, studies: list[str], model: str, version: str | None = None, store: bool = True
    ) -> list[dict[str, Any]]:
        """Predict every image series of ``studies`` on the server; rows ranked by case score, highest first.

        Each row is ``{"study", "series", "case_score", "prediction", "segmentation"}``, or ``{"study", "series",
        "error"}`` for a series the server could not read (listed last). One request, one series after the other.
        """
        body = {"studies": list(studies), "model": model, "version": version, "store": store}
        return self._json("POST", "/v1/pacs/triage", json=body)
