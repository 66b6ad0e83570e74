"""Where a worklist comes from for the viewers: a local ``uqseg triage`` folder or a server's triage job.

Both give the rows (most uncertain first) and, for one case, its image and its prediction as a
``PredictionResult`` (the same object a fresh prediction gives the viewers, so the review panel, the
display and the queue work unchanged). Torch-free: napari and 3D Slicer both use it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from napari_uqseg.client.backend import PredictionResult
from napari_uqseg.client.payloads import prediction_from_wire
from napari_uqseg.client.remote import RemoteBackend, _seg
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import image_from_bytes
from napari_uqseg.core.volume import Volume
from napari_uqseg.core.worklist import WORKLIST_JSON, WorklistRow, parse_worklist


class WorklistSource(ABC):
    """A triage worklist and the files of its cases.

    Attributes
    ----------
    rows : list of WorklistRow
        Most uncertain first.
    meta : dict
        ``model``, ``method``, ``labels``, ``failed`` as the triage wrote them.
    """

    def __init__(self, document: dict[str, Any], source: str) -> None:
        self.rows = parse_worklist(document, source)
        self.meta = dict(document.get("meta", {}))
        self.source = source

    @abstractmethod
    def file(self, row: WorklistRow, name: str) -> bytes:
        """Bytes of ``image``, ``review`` or an output volume (``mask``, ``probabilities``, a map) of a case."""

    @property
    def model(self) -> tuple[str, str]:
        """``(model, version)`` that made the predictions (best known names)."""
        return str(self.meta.get("model", "")), str(self.meta.get("version", ""))

    def row(self, case: str) -> WorklistRow:
        for row in self.rows:
            if row.case == case:
                return row
        raise InputError("case", f"{case!r} is not in the worklist {self.source}")

    def open_case(self, case: str) -> tuple[Volume, PredictionResult]:
        """The case's image and its prediction (mask, probabilities, maps, review queue)."""
        row = self.row(case)
        image = image_from_bytes(self.file(row, "image"), f"{case} image")
        outputs = {name: self.file(row, name) for name in ("mask", "probabilities", *row.maps)}
        model, version = self.model
        summary = {
            "id": "",  # not a server prediction: a correction needs a fresh prediction of the case
            "model": model,
            "version": version,
            "method": str(self.meta.get("method", "")),
            "labels": dict(self.meta.get("labels", {})),
            "review": json.loads(self.file(row, "review")),
            "info": {"worklist": self.source, "case": case},
        }
        return image, prediction_from_wire(summary, outputs)


class LocalWorklist(WorklistSource):
    """The worklist of a ``uqseg triage --out FOLDER`` run (``folder`` or its ``worklist.json``)."""

    def __init__(self, folder: str | Path) -> None:
        path = Path(folder)
        path = path / WORKLIST_JSON if path.is_dir() else path
        if not path.is_file():
            raise InputError(str(path), "no worklist here; run `uqseg triage --out FOLDER` first")
        try:
            document = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(str(path), f"invalid JSON ({exc})") from exc
        self.folder = path.parent
        super().__init__(document, str(path))

    @property
    def model(self) -> tuple[str, str]:
        return Path(str(self.meta.get("model", ""))).name, ""

    def file(self, row: WorklistRow, name: str) -> bytes:
        if name == "image":
            path = Path(row.image)
        else:
            path = self.folder / row.outputs / ("review.json" if name == "review" else f"{name}.nii.gz")
        if not path.is_file():
            raise InputError(str(path), f"case {row.case!r} has no {name} file (moved or deleted?)")
        return path.read_bytes()


class RemoteWorklist(WorklistSource):
    """The worklist of a finished ``triage`` job on a server."""

    def __init__(self, backend: RemoteBackend, job_id: str) -> None:
        self.backend = backend
        self.job_id = job_id
        status = backend.job(job_id)
        self._model = (str(status.result.get("model", "")), str(status.result.get("version", "")))
        document = backend._json("GET", f"/v1/jobs/{_seg(job_id)}/worklist")
        super().__init__(document, f"job {job_id}")

    @property
    def model(self) -> tuple[str, str]:
        return self._model

    def file(self, row: WorklistRow, name: str) -> bytes:
        path = f"/v1/jobs/{_seg(self.job_id)}/worklist/{_seg(row.case)}/{_seg(name)}"
        return self.backend._request("GET", path).content
