"""The evaluation report folder written by ``uqseg evaluate`` and read by the explorer (numpy only).

Layout of a report folder::

    report.json            command, model card summary, dataset paths, aggregate figures, curves, one row per case
    table.txt              the printed table
    reliability.png, risk_coverage.png, dice_after_removal.png
    cases/<case_id>/
        prediction.nii.gz  argmax labels, uint8
        error.nii.gz       ERROR_CODES: 0 correct, 1 false positive, 2 false negative (uint8)
        <map>.nii.gz       each uncertainty map, float32
        image.nii.gz       only with a shift: the corrupted image the model saw
        probabilities.nii.gz  only with --keep-probabilities: (I, J, K, C) float32
        case.json          the case's row plus its reliability bins, risk-coverage and Dice-after-removal curves
                           and its worst region

Paths of per-case files are relative to the report folder (it can be moved); dataset paths are absolute.
NaN figures are stored as JSON ``null`` and read back as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.json_files import read_json
from napari_uqseg.core.json_values import clean_json
from napari_uqseg.core.nifti_io import float_map_from_bytes, load_image, volume_from_bytes
from napari_uqseg.core.volume import Volume

REPORT_FILE = "report.json"
CASE_FILE = "case.json"
CASES_DIR = "cases"
FORMAT_VERSION = 1

#: voxel codes of ``error.nii.gz``; a voxel given the wrong foreground class counts as a false positive
#: (of the predicted class), a ground-truth foreground voxel predicted as background as a false negative
ERROR_CODES = {0: "correct", 1: "false positive", 2: "false negative"}
FALSE_POSITIVE = 1
FALSE_NEGATIVE = 2

#: per-case figures in report order; the explorer's sortable columns are a subset
CASE_FIGURES = (
    "dice",
    "case_score",
    "ece",
    "ece_whole",
    "brier",
    "nll",
    "auroc",
    "aupr",
    "aurc",
    "e_aurc",
    "ueo",
    "review_recall",
    "error_rate",
)


def error_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Voxel error codes of :data:`ERROR_CODES`.

    Parameters
    ----------
    pred, target : np.ndarray
        Integer label maps ``(*S)`` (0 = background).

    Returns
    -------
    np.ndarray
        ``(*S)`` uint8: 0 where ``pred == target``, 1 where a foreground class is predicted wrongly,
        2 where ground-truth foreground is predicted as background.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise InputError("pred", f"shape {pred.shape} does not match target shape {target.shape}")
    out = np.zeros(pred.shape, dtype=np.uint8)
    wrong = pred != target
    out[wrong & (pred != 0)] = FALSE_POSITIVE
    out[wrong & (pred == 0)] = FALSE_NEGATIVE
    return out


def worst_region(errors: np.ndarray) -> dict[str, Any] | None:
    """The largest connected group of error voxels (26-connectivity in 3-D), where a reader should look first.

    Parameters
    ----------
    errors : np.ndarray
        ``(*S)`` error codes or bool; non-zero = error.

    Returns
    -------
    dict or None
        ``voxels`` (int), ``centroid`` (voxel coordinates, one float per axis), ``bbox`` (per axis
        ``[start, stop)``); None when there is no error.
    """
    err = np.asarray(errors) != 0
    labels, n = ndimage.label(err, structure=np.ones((3,) * err.ndim, dtype=bool))
    if n == 0:
        return None
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    biggest = int(np.argmax(counts))  # ties: the first in raster order
    centre = ndimage.center_of_mass(labels == biggest)
    box = ndimage.find_objects(labels, max_label=biggest)[biggest - 1]
    return {
        "voxels": int(counts[biggest]),
        "centroid": [float(c) for c in centre],
        "bbox": [[int(s.start), int(s.stop)] for s in box],
    }


def subsample_curve(x: np.ndarray, y: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    """At most ``points`` evenly spaced samples of a curve (first and last kept), as JSON lists."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size > points:
        index = np.unique(np.linspace(0, x.size - 1, points).round().astype(np.int64))
        x, y = x[index], y[index]
    return {"x": clean_json(x), "y": clean_json(y)}


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


@dataclass
class CaseRow:
    """One case of a report: where its files are and its figures.

    Attributes
    ----------
    case_id : str
        Dataset case id.
    image, label : str
        Absolute paths of the dataset image and ground truth.
    dir : str
        Case folder relative to the report folder.
    files : dict
        ``prediction``, ``error``, optional ``probabilities`` and ``image`` (the shifted image, only under a
        shift) -> file name in ``dir``; ``maps`` -> {map: file name}.
    dice_per_class : list of float
        Foreground classes ``1..C-1``.
    dice, case_score, ece, ... : float
        See :data:`CASE_FIGURES` and ``report.json``'s ``definitions``; NaN where undefined.
    """

    case_id: str
    image: str
    label: str
    dir: str
    files: dict[str, Any]
    dice_per_class: list[float]
    dice: float = float("nan")
    case_score: float = float("nan")
    ece: float = float("nan")
    ece_whole: float = float("nan")
    brier: float = float("nan")
    nll: float = float("nan")
    auroc: float = float("nan")
    aupr: float = float("nan")
    aurc: float = float("nan")
    e_aurc: float = float("nan")
    ueo: float = float("nan")
    review_recall: float = float("nan")
    error_rate: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return clean_json({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseRow:
        kwargs: dict[str, Any] = {k: d[k] for k in ("case_id", "image", "label", "dir", "files")}
        kwargs["dice_per_class"] = [_float(v) for v in d.get("dice_per_class", [])]
        for name in CASE_FIGURES:
            kwargs[name] = _float(d.get(name))
        return cls(**kwargs)

    def figure(self, name: str) -> float:
        """A figure by name (see :data:`CASE_FIGURES`)."""
        if name not in CASE_FIGURES:
            raise InputError("figure", f"unknown case figure {name!r}; choose one of {', '.join(CASE_FIGURES)}")
        return float(getattr(self, name))


@dataclass
class Report:
    """A report folder read back.

    Attributes
    ----------
    path : Path
        The report folder.
    meta : dict
        ``report.json`` without ``cases``: ``command``, ``model``, ``dataset``, ``map``, ``labels``,
        ``aggregate``, ``curves`` ...
    cases : list of CaseRow
        In report order.
    """

    path: Path
    meta: dict[str, Any]
    cases: list[CaseRow] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Short label: the method and the report folder name."""
        return f"{self.meta.get('model', {}).get('method', '?')} ({self.path.name})"

    @property
    def map_name(self) -> str:
        return str(self.meta.get("map", "entropy"))

    def case(self, case_id: str) -> CaseRow:
        for row in self.cases:
            if row.case_id == case_id:
                return row
        raise InputError(str(self.path), f"no case {case_id!r} in this report")

    def case_file(self, case_id: str, key: str) -> Path:
        """Absolute path of a case's file: ``image`` (what the model saw: the shifted copy under a shift, else the
        dataset image), ``label``, ``prediction``, ``error``, ``probabilities`` or a map name."""
        row = self.case(case_id)
        if key == "label" or (key == "image" and "image" not in row.files):
            return Path(getattr(row, key))
        name = (
            row.files.get(key)
            if key in ("image", "prediction", "error", "probabilities")
            else row.files.get("maps", {}).get(key)
        )
        if not name:
            raise InputError(str(self.path / row.dir), f"case {case_id!r} has no {key!r} file")
        return self.path / row.dir / name

    def load_case(self, case_id: str, map_name: str | None = None) -> dict[str, Volume]:
        """The volumes of a case, all on the case's grid and affine.

        Returns
        -------
        dict
            ``image`` float32 (raw intensities the model saw), ``label``, ``prediction`` and ``error`` uint8,
            ``uncertainty`` float32 (``map_name``, default the report's map); each ``(I, J, K)``.
        """
        image = load_image(self.case_file(case_id, "image"))
        out = {"image": image}
        for key in ("label", "prediction", "error"):
            img = _nifti(self.case_file(case_id, key))
            out[key] = Volume(np.asarray(img.dataobj).astype(np.uint8), img.affine)
        path = self.case_file(case_id, map_name or self.map_name)
        out["uncertainty"] = float_map_from_bytes(path.read_bytes(), str(path))
        return out

    def case_detail(self, case_id: str) -> dict[str, Any]:
        """``case.json`` of a case: its row plus ``reliability``, ``risk_coverage``, ``dice_after_removal``,
        ``worst_region`` (see :func:`worst_region`) and ``affine``."""
        path = self.path / self.case(case_id).dir / CASE_FILE
        return _read_json(path)


def _nifti(path: Path) -> Any:
    """A NIfTI file that may be all zeros (predictions and error maps can be empty, unlike training labels)."""
    if not path.is_file():
        raise InputError(str(path), "file does not exist (was the report or the dataset moved?)")
    return volume_from_bytes(path.read_bytes(), str(path))


def _read_json(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(str(path), "must hold a JSON object")
    return data


def read_report(path: str | Path) -> Report:
    """Read a report folder (or its ``report.json``).

    Raises
    ------
    InputError
        Not a report folder, invalid JSON, a newer format, malformed case rows.
    """
    path = Path(path)
    if path.name == REPORT_FILE:
        path = path.parent
    if not (path / REPORT_FILE).is_file():
        raise InputError(
            str(path), f"not an evaluation report folder (no {REPORT_FILE}); make one with `uqseg evaluate`"
        )
    data = _read_json(path / REPORT_FILE)
    version = int(data.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise InputError(str(path / REPORT_FILE), f"report format {version} is newer than this napari-uqseg reads")
    try:
        cases = [CaseRow.from_dict(d) for d in data.get("cases", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(str(path / REPORT_FILE), f"malformed case row ({exc.__class__.__name__}: {exc})") from exc
    meta = {k: v for k, v in data.items() if k != "cases"}
    return Report(path.resolve(), meta, cases)
