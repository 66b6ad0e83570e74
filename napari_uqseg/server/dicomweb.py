"""The server's PACS connection: QIDO-RS search, WADO-RS retrieve and STOW-RS store through dicomweb-client.

Listings keep study and series descriptors only (UIDs, dates, descriptions, modality, counts); patient
names and IDs are dropped here, so no listing, log line or error message of the server can carry them.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from napari_uqseg.core.errors import InputError, NotFoundError, UQSegError

log = logging.getLogger(__name__)

#: DICOM JSON tags kept in study listings (keyword -> tag)
STUDY_FIELDS = {
    "StudyInstanceUID": "0020000D",
    "StudyDate": "00080020",
    "StudyDescription": "00081030",
    "AccessionNumber": "00080050",
    "ModalitiesInStudy": "00080061",
    "NumberOfStudyRelatedSeries": "00201206",
}
SERIES_FIELDS = {
    "SeriesInstanceUID": "0020000E",
    "Modality": "00080060",
    "SeriesNumber": "00200011",
    "SeriesDescription": "0008103E",
    "NumberOfSeriesRelatedInstances": "00201209",
}
#: DICOM UIDs: digits and dots, at most 64 characters
_UID_CHARS = set("0123456789.")


class PacsError(UQSegError):
    """The PACS could not be reached or refused a request (HTTP 502 on the server's wire)."""


def check_uid(value: Any, name: str) -> str:
    """Return ``value`` if it is a well-formed DICOM UID; InputError naming ``name`` otherwise."""
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not set(value) <= _UID_CHARS:
        raise InputError(name, "must be a DICOM UID (digits and dots, at most 64 characters)")
    return value


def _fields(item: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for keyword, tag in fields.items():
        values = item.get(tag, {}).get("Value") or []
        out[keyword] = (values if keyword == "ModalitiesInStudy" else values[0]) if values else None
    return out


class PacsGateway:
    """A DICOMweb endpoint (Orthanc, dcm4chee, a cloud archive) reached with dicomweb-client.

    Parameters
    ----------
    url : str
        DICOMweb root, e.g. ``http://orthanc:8042/dicom-web``.
    token : str or None
        Bearer token sent to the PACS.
    timeout : float
        Seconds per request.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0) -> None:
        from dicomweb_client.api import DICOMwebClient

        if not url.startswith(("http://", "https://")):
            raise InputError("--dicomweb", "the DICOMweb address must start with http:// or https://")
        self.url = url.rstrip("/")
        session = requests.Session()
        session.request = _with_timeout(session.request, timeout)  # type: ignore[method-assign]
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        self.client = DICOMwebClient(self.url, session=session)

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one dicomweb-client call; map HTTP and connection failures to NotFoundError / PacsError."""
        try:
            return function(*args, **kwargs)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status == 404:
                raise NotFoundError(what, "not found in the PACS") from exc
            log.warning("PACS answered HTTP %s to %s", status, what)
            raise PacsError(f"{what}: the PACS answered HTTP {status}") from exc
        except requests.RequestException as exc:
            log.warning("PACS unreachable for %s (%s)", what, exc.__class__.__name__)
            raise PacsError(f"{what}: cannot reach the PACS at {self.url} ({exc.__class__.__name__})") from exc

    def studies(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Studies in the PACS (descriptors only, no patient identity)."""
        found = self._call("studies", self.client.search_for_studies, limit=limit, offset=offset)
        return [_fields(item, STUDY_FIELDS) for item in found]

    def series(self, study: str) -> list[dict[str, Any]]:
        """Series of one study (descriptors only)."""
        study = check_uid(study, "study")
        found = self._call(f"study {study}", self.client.search_for_series, study_instance_uid=study)
        return [_fields(item, SERIES_FIELDS) for item in found]

    def retrieve_series(self, study: str, series: str) -> list[Any]:
        """Every instance of one series as pydicom datasets (WADO-RS)."""
        study, series = check_uid(study, "study"), check_uid(series, "series")
        datasets = self._call(
            f"series {series}", self.client.retrieve_series, study_instance_uid=study, series_instance_uid=series
        )
        if not datasets:
            raise NotFoundError(f"series {series}", "has no instances in the PACS")
        return datasets

    def store(self, datasets: list[Any]) -> None:
        """Store instances with STOW-RS; PacsError if the PACS refuses any of them."""
        response = self._call("STOW-RS", self.client.store_instances, datasets)
        failed = response.get("FailedSOPSequence") if response is not None else None
        if failed:
            raise PacsError(f"STOW-RS: the PACS refused {len(failed)} of {len(datasets)} instance(s)")


def _with_timeout(request: Any, timeout: float) -> Any:
    def call(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return request(method, url, **kwargs)

    return call
