"""``RemoteBackend``: the v1 protocol over HTTP(S) with ``requests`` (bundled in 3D Slicer)."""

from __future__ import annotations

import ipaddress
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import requests
import urllib3

import napari_uqseg
from napari_uqseg.client.backend import Backend, PredictionResult
from napari_uqseg.client.errors import (
    BackendError,
    BackendTimeout,
    ConnectionFailed,
    ProtocolMismatch,
    error_from_response,
)
from napari_uqseg.client.output_download import download_prediction
from napari_uqseg.client.pacs import PacsMethods
from napari_uqseg.client.payloads import image_payload, label_payload, reviewed_payload
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.records import JobStatus, MethodInfo, ModelSummary
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.volume import Volume
from napari_uqseg.core.wire import PROTOCOL_VERSION, sha256_hex

TOKEN_ENV = "UQSEG_TOKEN"
ALLOW_HTTP_ENV = "UQSEG_ALLOW_HTTP"
MAX_JOB_WAIT_S = 30.0  # longest long poll the server grants (``GET /v1/jobs/{id}?wait=``)


def _seg(value: str) -> str:
    """One URL path segment: ``/`` and ``..`` are escaped, so an id can never reach another route."""
    return quote(str(value), safe="")


def _is_loopback(url: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (literal addresses only: no DNS lookup)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RemoteBackend(PacsMethods, Backend):
    """Client of a ``uqseg serve`` server.

    Parameters
    ----------
    url : str
        ``http(s)://host:port`` of the server.
    token : str or None
        Bearer token (default: ``$UQSEG_TOKEN``).
    timeout : float or (float, float)
        ``(connect, read)`` seconds; a single number is the connect timeout, reads get ``read_timeout``.
    read_timeout : float
        Read timeout for predictions and transfers (CPU servers may take minutes).
    verify : bool or str
        TLS verification (on; a CA bundle path for a hospital CA). Never turned off silently.
    compress : bool or None
        gzip uploads (default: off over loopback, where it only costs CPU; on otherwise).
    check_protocol : bool
        Ask ``/v1/health`` now and raise ``ProtocolMismatch`` for a server too old or too new.
    allow_http : bool
        Allow plain ``http://`` to a non-loopback host (the token and images would cross the network in
        clear: only behind a trusted TLS-terminating tunnel). Also ``$UQSEG_ALLOW_HTTP=1``.
    roi_margin : int or None
        Fetch a prediction's outputs as its region of interest only (foreground and review-region boxes grown
        by this many voxels, ``client.output_download``), pasted back to full size; ``None``: whole outputs.
        The napari plugin and the Slicer module pass ``ROI_MARGIN``.

    Proxy variables (``HTTP_PROXY`` ...) are ignored for a loopback server: a local proxy must never see
    the token or the images.

    Raises
    ------
    ConnectionFailed, BackendTimeout, ProtocolMismatch
        When ``check_protocol`` and the server cannot be reached or speaks another protocol.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float | tuple[float, float] = 10.0,
        read_timeout: float = 600.0,
        verify: bool | str = True,
        compress: bool | None = None,
        check_protocol: bool = True,
        allow_http: bool = False,
        roi_margin: int | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.roi_margin = roi_margin
        if urlparse(self.url).scheme not in ("http", "https"):
            raise ConnectionFailed(f"{url!r}: the server address must start with http:// or https://", source="url")
        allow_http = allow_http or os.environ.get(ALLOW_HTTP_ENV) == "1"
        if urlparse(self.url).scheme == "http" and not _is_loopback(self.url) and not allow_http:
            raise ConnectionFailed(
                f"{url!r}: plain http to another machine would send the token and images in clear; use https:// "
                f"(or allow_http=True / {ALLOW_HTTP_ENV}=1 behind a trusted TLS tunnel)",
                source="url",
            )
        self.timeout = timeout if isinstance(timeout, tuple) else (float(timeout), float(read_timeout))
        self.compress = (not _is_loopback(self.url)) if compress is None else compress
        self.session = requests.Session()
        self.bytes_sent = self.bytes_received = 0  # body bytes over the wire, for reporting
        self._count_lock = threading.Lock()
        self.session.verify = verify
        self.session.trust_env = not _is_loopback(self.url)  # no proxy (nor .netrc) for a loopback server
        token = token or os.environ.get(TOKEN_ENV) or None
        self.session.headers.update(
            {"User-Agent": f"napari-uqseg/{napari_uqseg.__version__}", "X-UQSeg-Protocol": str(PROTOCOL_VERSION)}
        )
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        if check_protocol:
            self.check_protocol()

    # -- transport ------------------------------------------------------------------------------
    def _send(self, method: str, url: str, timeout: tuple[float, float], kwargs: dict[str, Any]) -> requests.Response:
        """One request; a GET or HEAD is sent once more when the server closed a kept-alive connection under it.

        A server drops idle keep-alive connections (uvicorn: after 5 s); one reused at that moment fails with
        "connection aborted" although the server is fine. Only body-less methods are resent (nothing consumed).
        """
        try:
            return self.session.request(method, url, timeout=timeout, **kwargs)
        except requests.exceptions.ConnectionError as exc:
            reason = exc.args[0] if exc.args else None
            if method not in ("GET", "HEAD") or not isinstance(reason, urllib3.exceptions.ProtocolError):
                raise
        return self.session.request(method, url, timeout=timeout, **kwargs)

    def _request(
        self, method: str, path: str, *, timeout: tuple[float, float] | None = None, **kwargs: Any
    ) -> requests.Response:
        url = f"{self.url}{path}"
        try:
            response = self._send(method, url, timeout or self.timeout, kwargs)
        except requests.exceptions.SSLError as exc:
            raise ConnectionFailed(
                f"{url}: TLS verification failed ({exc}); pass verify='/path/to/ca.pem' for a private CA"
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise BackendTimeout(
                f"{url}: no answer within {timeout or self.timeout} s ({exc.__class__.__name__})"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailed(
                f"{url}: cannot reach the server ({exc.__class__.__name__}); is `uqseg serve` running?"
            ) from exc
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text[:500]
            raise error_from_response(response.status_code, body, f"{method} {path}")
        with self._count_lock:  # outputs are downloaded by parallel threads
            self.bytes_sent += len(kwargs.get("data") or b"")  # bodies sent as bytes (uploads); JSON ones are small
            self.bytes_received += len(response.content)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"{path}: the server's answer is not JSON; is {self.url} a uqseg server?") from exc

    # -- discovery ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/v1/health")

    def check_protocol(self) -> dict[str, Any]:
        """Raise ``ProtocolMismatch`` unless the server speaks this client's protocol version."""
        info = self.health()
        server = info.get("protocol") if isinstance(info, dict) else None
        if not isinstance(server, int):
            raise ProtocolMismatch(f"{self.url} did not report a protocol version; is it a uqseg server?")
        if server < PROTOCOL_VERSION:
            raise ProtocolMismatch(
                f"server too old: it speaks protocol v{server}, this client v{PROTOCOL_VERSION}; "
                "upgrade napari-uqseg on the server"
            )
        if server > PROTOCOL_VERSION:
            raise ProtocolMismatch(
                f"server too new: it speaks protocol v{server}, this client v{PROTOCOL_VERSION}; "
                "upgrade napari-uqseg here"
            )
        return info

    def capabilities(self) -> dict[str, Any]:
        return self._json("GET", "/v1/capabilities")

    def methods(self) -> list[MethodInfo]:
        return [MethodInfo.from_dict(m) for m in self.capabilities()["methods"]]

    def models(self) -> list[ModelSummary]:
        return [ModelSummary.from_dict(m) for m in self._json("GET", "/v1/models")]

    # -- prediction -----------------------------------------------------------------------------
    def upload_image(self, image: Volume) -> str:
        """Upload once by content hash (the server keeps it); returns the sha256."""
        data = image_payload(image, self.compress)
        sha = sha256_hex(data)
        self._request("PUT", f"/v1/images/{sha}", data=data, headers={"Content-Type": "application/octet-stream"})
        return sha

    def predict(
        self,
        image: Volume,
        model: str,
        version: str | None = None,
        options: dict[str, Any] | None = None,
        progress: Progress = no_progress,
    ) -> PredictionResult:
        start = time.perf_counter()
        sent, received = self.bytes_sent, self.bytes_received
        progress(0, 3, "uploading image")
        sha = self.upload_image(image)
        uploaded = time.perf_counter()
        progress(1, 3, "predicting on the server")
        body = {"image": sha, "model": model, "version": version, "options": options or {}}
        summary = self._json("POST", "/v1/predictions", json=body)
        predicted = time.perf_counter()
        progress(2, 3, "downloading outputs")
        result = self._download(summary)
        wire = {"sent_bytes": self.bytes_sent - sent, "received_bytes": self.bytes_received - received}
        result.prediction.info["wire"] = wire
        now = time.perf_counter()
        result.timings.update(
            {
                "upload": uploaded - start,
                "request": predicted - uploaded,
                "download": now - predicted,
                "client_total": now - start,
            }
        )
        progress(3, 3, "done")
        return result

    def fetch_prediction(self, prediction_id: str, box: str | None = None) -> PredictionResult:
        """A stored prediction with its outputs (as the region of interest when ``roi_margin`` is set).

        ``box="i0:i1,j0:j1,k0:k1"`` (voxels, stop exclusive): a box the viewer gives instead; outside it the
        arrays hold the background value (``client.output_download``).
        """
        summary = self._json("GET", f"/v1/predictions/{_seg(prediction_id)}")
        return self._download(summary, box)

    def _download(self, summary: dict[str, Any], box: str | None = None) -> PredictionResult:
        path = f"/v1/predictions/{_seg(summary['id'])}/outputs/"
        return download_prediction(
            lambda name, params: self._request("GET", path + _seg(name), params=params), summary, self.roi_margin, box
        )

    def output(self, prediction_id: str, name: str, dtype: str = "uint8", box: str | None = None) -> bytes:
        """NIfTI bytes of one output (``dtype="float32"`` if the prediction kept float32 outputs).

        ``box="i0:i1,j0:j1,k0:k1"`` (voxels, stop exclusive) asks for that box only: a crop whose affine places
        it where it lies in the image.
        """
        params = {"dtype": dtype} if box is None else {"dtype": dtype, "box": box}
        return self._request(
            "GET", f"/v1/predictions/{_seg(prediction_id)}/outputs/{_seg(name)}", params=params
        ).content

    def submit_correction(
        self,
        prediction_id: str,
        label: Volume,
        review: ReviewRanking | None = None,
        client_key: str | None = None,
        reviewed: Volume | None = None,
    ) -> str:
        key = client_key or uuid.uuid4().hex
        body = {
            "prediction": prediction_id,
            "label": label_payload(label),
            "client_key": key,
            "review": review.to_dict() if review is not None else {},
        }
        if reviewed is not None:  # only when there is one: a whole-case correction reads as before
            body["reviewed"] = reviewed_payload(reviewed)
        try:
            return self._json("POST", "/v1/corrections", json=body)["id"]
        except (BackendTimeout, ConnectionFailed):
            # the key makes a retry safe: if the first one was stored, the server returns that one
            return self._json("POST", "/v1/corrections", json=body)["id"]

    # -- jobs and versions ----------------------------------------------------------------------
    def start_job(self, kind: str, model: str, params: dict[str, Any] | None = None) -> JobStatus:
        body = {"kind": kind, "model": model, "params": params or {}, "client_key": uuid.uuid4().hex}
        return JobStatus.from_dict(self._json("POST", "/v1/jobs", json=body))

    def job(self, job_id: str, wait: float = 0.0) -> JobStatus:
        path = f"/v1/jobs/{_seg(job_id)}"
        if wait <= 0:
            return JobStatus.from_dict(self._json("GET", path))
        connect, read = self.timeout
        held = min(wait, MAX_JOB_WAIT_S)  # the server holds the answer at most this long
        timeout = (connect, max(read, held + connect))
        return JobStatus.from_dict(self._json("GET", path, params={"wait": held}, timeout=timeout))

    def cancel_job(self, job_id: str) -> JobStatus:
        return JobStatus.from_dict(self._json("POST", f"/v1/jobs/{_seg(job_id)}/cancel"))

    def promote(self, model: str, version: str) -> ModelSummary:
        return ModelSummary.from_dict(
            self._json("POST", f"/v1/models/{_seg(model)}/promote", json={"version": version})
        )

    def rollback(self, model: str) -> ModelSummary:
        return ModelSummary.from_dict(self._json("POST", f"/v1/models/{_seg(model)}/rollback"))

    # -- model library ------------------------------------------------------------------------------
    def catalogue(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/v1/catalogue"))

    def pull_model(self, entry: str, name: str | None = None) -> ModelSummary:
        path = f"/v1/models/{_seg(name or entry)}/pull"
        return ModelSummary.from_dict(self._json("POST", path, json={"entry": entry}))

    def import_model(self, name: str, path: str) -> ModelSummary:
        from napari_uqseg.client.transfer import archive_bytes

        data = archive_bytes(path)
        headers = {"Content-Type": "application/gzip"}
        return ModelSummary.from_dict(self._json("PUT", f"/v1/model-archives/{_seg(name)}", data=data, headers=headers))

    def export_model(self, name: str, version: str | None, archive: str) -> str:
        from napari_uqseg.core.nifti_io import atomic_write_bytes

        params = {"version": version} if version else None
        data = self._request("GET", f"/v1/models/{_seg(name)}/archive", params=params).content
        atomic_write_bytes(Path(archive), data)
        return str(archive)

    def upload_dataset(self, name: str, folder: str) -> str:
        from napari_uqseg.client.transfer import dataset_bytes

        headers = {"Content-Type": "application/gzip"}
        return self._json("PUT", f"/v1/datasets/{_seg(name)}", data=dataset_bytes(folder), headers=headers)["dataset"]

    def close(self) -> None:
        self.session.close()
