"""The study worklist: one row per triaged case, sorted so that a reader opens the likely failures first.

A row is built from what ``uqseg predict`` writes for the case (the mask and ``review.json``): the case
score and its ranking are read from ``review.json`` and never recomputed here, so whatever
``core.review.build_review`` makes the case score, the worklist follows. Flags compare a case with the
rest of the study (robust z-scores), see :func:`study_flags`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.json_files import read_json
from napari_uqseg.core.nifti_io import atomic_write_bytes
from napari_uqseg.core.review import foreground_roi
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.volume_intervals import format_interval

WORKLIST_JSON = "worklist.json"
WORKLIST_CSV = "worklist.csv"
CASE_RECORD = "case.json"
FLAG_FAILURE = "likely failure"
FLAG_UNLIKE = "unlike the training data"
#: robust z-score (median / 1.4826 MAD) above which a case is flagged
FLAG_Z = 3.0
#: fewer cases than this give no study-relative flags (the median and MAD mean nothing yet)
MIN_STUDY = 8
TOP_REGIONS = 3


@dataclass
class WorklistRow:
    """One triaged case.

    Attributes
    ----------
    case : str
        Case id (the image file name without ``.nii``/``.nii.gz``).
    score : float
        Case score from the case's ``review.json`` (higher: look first).
    reason : str
        Why the case has that score, in words.
    volumes_ml : dict of str to float
        Predicted volume per foreground class name, in millilitres.
    top_regions : list of dict
        The first regions of the review queue: ``id``, ``voxels``, ``slice`` and ``mass``.
    background_uncertainty : float
        Mean uncertainty outside the dilated predicted foreground (raised everywhere on unfamiliar images).
    flags : list of str
        ``"likely failure"``, ``"unlike the training data"`` (filled by :func:`study_flags`).
    volume_intervals_ml : dict
        Class name -> ``{level ("0.9"): [low, high]}`` conformal volume intervals in millilitres, for the
        classes the model's calibration covers (empty without one); ``high`` is ``None`` when unbounded
        (too few calibration cases for that level).
    image : str
        Path of the image that was predicted.
    outputs : str
        Folder of the case's outputs, relative to the worklist folder.
    """

    case: str
    score: float
    reason: str
    volumes_ml: dict[str, float]
    top_regions: list[dict[str, Any]]
    background_uncertainty: float
    image: str
    outputs: str
    maps: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    volume_intervals_ml: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorklistRow:
        try:
            return cls(
                case=str(d["case"]),
                score=_float(d["score"]),
                reason=str(d.get("reason", "")),
                volumes_ml={str(k): _float(v) for k, v in dict(d.get("volumes_ml", {})).items()},
                top_regions=list(d.get("top_regions", [])),
                background_uncertainty=_float(d.get("background_uncertainty")),
                image=str(d.get("image", "")),
                outputs=str(d.get("outputs", d["case"])),
                maps=[str(m) for m in d.get("maps", [])],
                flags=[str(f) for f in d.get("flags", [])],
                volume_intervals_ml=_intervals(d.get("volume_intervals_ml") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("worklist row", f"malformed row {str(d)[:80]!r} ({exc})") from exc


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _bound(value: Any) -> float | None:
    """A finite interval end as float; ``None`` for an unbounded (infinite or missing) one."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _intervals(by_class: dict[str, Any]) -> dict[str, dict[str, list[float | None]]]:
    return {str(c): {str(k): [_bound(b) for b in v] for k, v in dict(lv).items()} for c, lv in by_class.items()}


def volume_intervals(volumes: dict[str, Any] | None, labels: dict[str, str]) -> dict[str, dict[str, list]]:
    """Class name -> ``{level: [low, high]}`` in mL from a prediction's ``info["volumes"]``
    (``core.volume_intervals.describe_volumes``); classes without calibrated intervals are left out."""
    found = {}
    for c, entry in (volumes or {}).get("classes", {}).items():
        if entry.get("intervals"):
            found[labels.get(str(c), f"class {c}")] = entry["intervals"]
    return _intervals(found)


def volume_summary(
    volumes_ml: dict[str, float], intervals_ml: dict[str, dict[str, list]] | None = None, level: str = "0.9"
) -> str:
    """Each structure's volume with its ``level`` interval, e.g. ``"anterior 1.52 mL (90 %: 1.31-1.74)"``.

    ``volumes_ml`` and ``intervals_ml`` as in :class:`WorklistRow` (mL); a structure without a calibrated
    interval shows its volume alone.
    """
    parts = []
    for name, volume in volumes_ml.items():
        bounds = (intervals_ml or {}).get(name, {}).get(level)
        pct = f"{float(level) * 100:g} %"
        parts.append(f"{name} {volume:.2f} mL" + (f" ({pct}: {format_interval(bounds)})" if bounds else ""))
    return "; ".join(parts)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def case_reason(ranking: ReviewRanking) -> str:
    """The case score in words: which score (or map and where), and the top region."""
    name = getattr(ranking, "case_score_name", "")  # rankings that name their case score (review-loop work)
    if name and name != "mean_uncertainty":
        what = name.replace("_", " ")
    else:
        what = f"mean {ranking.map_name} in the predicted structure"
    text = f"{ranking.case_score:.3f} = {what}"
    if ranking.regions:
        top = ranking.regions[0]
        key = "most probably wrong voxels" if ranking.rank_by == "expected_errors" else "largest mass"
        text += f"; {len(ranking.regions)} uncertain regions, {key} at slice {top.slice_index}"
    return text


def voxel_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in mL from a ``(4, 4)`` affine in mm (``|det|`` of its 3x3 part / 1000)."""
    return float(abs(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]))) / 1000.0


def case_row(
    case: str,
    image: str,
    outputs: str,
    ranking: ReviewRanking,
    mask: np.ndarray,
    uncertainty: np.ndarray,
    affine: np.ndarray,
    labels: dict[str, str],
    maps: list[str] | None = None,
    volumes: dict[str, Any] | None = None,
) -> WorklistRow:
    """The worklist row of one predicted case (flags are added later, per study).

    Parameters
    ----------
    ranking : ReviewRanking
        The case's ``review.json`` as written by the prediction writer.
    mask : np.ndarray
        ``(I, J, K)`` predicted labels.
    uncertainty : np.ndarray
        ``(I, J, K)`` the map ``ranking`` was built on.
    affine : np.ndarray
        ``(4, 4)`` voxel-to-world affine in mm.
    labels : dict
        Class index (as str) -> name; index 0 (background) is not reported.
    maps : list of str, optional
        Uncertainty maps written for the case.
    volumes : dict, optional
        The prediction's ``info["volumes"]``: its calibrated intervals become ``volume_intervals_ml``.
    """
    counts = np.bincount(np.asarray(mask, dtype=np.int64).ravel(), minlength=max(int(k) for k in labels) + 1)
    per_voxel = voxel_ml(affine)
    volumes_ml = {name: float(counts[int(k)] * per_voxel) for k, name in labels.items() if int(k) != 0}
    outside = ~foreground_roi(mask) if np.any(mask) else np.zeros(np.shape(mask), dtype=bool)
    background = float(np.asarray(uncertainty)[outside].mean()) if outside.any() else float("nan")
    regions = [
        {"id": r.id, "voxels": r.voxels, "slice": r.slice_index, "mass": round(r.mass, 4)}
        for r in ranking.regions[:TOP_REGIONS]
    ]
    reason = case_reason(ranking)
    row = WorklistRow(case, ranking.case_score, reason, volumes_ml, regions, background, image, outputs)
    row.maps, row.volume_intervals_ml = list(maps or []), volume_intervals(volumes, labels)
    return row


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 MAD)`` of finite values (NaN elsewhere; 0 when the MAD is 0)."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    z = np.full(x.shape, np.nan)
    if not finite.any():
        return z
    median = np.median(x[finite])
    mad = 1.4826 * np.median(np.abs(x[finite] - median))
    z[finite] = (x[finite] - median) / mad if mad > 0 else 0.0
    return z


def study_flags(rows: list[WorklistRow]) -> list[WorklistRow]:
    """Set each row's flags against the rest of the study; returns ``rows``.

    ``"likely failure"``: nothing predicted, or a case score more than :data:`FLAG_Z` robust standard
    deviations above the study's median. ``"unlike the training data"``: the mean uncertainty outside the
    structure that far above the study's median (an unfamiliar image raises it everywhere, a local
    failure does not). With fewer than :data:`MIN_STUDY` cases only the empty-prediction flag is set.
    """
    study = len(rows) >= MIN_STUDY
    score_z = robust_z(np.array([r.score for r in rows]))
    background_z = robust_z(np.array([r.background_uncertainty for r in rows]))
    for row, sz, bz in zip(rows, score_z, background_z, strict=True):
        flags = []
        empty = sum(row.volumes_ml.values()) == 0.0
        if empty or (study and sz > FLAG_Z):
            flags.append(FLAG_FAILURE)
        if study and bz > FLAG_Z:
            flags.append(FLAG_UNLIKE)
        row.flags = flags
    return rows


def sort_rows(rows: list[WorklistRow]) -> list[WorklistRow]:
    """Most uncertain first; cases without a score last; ties by case id."""
    return sorted(rows, key=lambda r: (math.isnan(r.score), -r.score if not math.isnan(r.score) else 0.0, r.case))


def csv_text(rows: list[WorklistRow]) -> str:
    """The worklist as CSV: rank, case, score, reason, one ``volume_ml_<class>`` column per class, regions, flags.

    Classes with calibrated intervals add ``volume_ml_<class>_90_low`` / ``_90_high`` (mL; empty when unbounded
    or uncalibrated).
    """
    classes = sorted({name for r in rows for name in r.volumes_ml})
    bounded = sorted({name for r in rows for name in r.volume_intervals_ml})
    ends = [f"volume_ml_{c}_90_{end}" for c in bounded for end in ("low", "high")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["rank", "case", "score", "reason", *[f"volume_ml_{c}" for c in classes], *ends, "top_regions", "flags"]
    writer.writerow(header)
    for rank, r in enumerate(rows, start=1):
        regions = "; ".join(f"#{g['id']} {g['voxels']} vox @ slice {g['slice']}" for g in r.top_regions)
        volumes = [f"{r.volumes_ml.get(c, float('nan')):.3f}" for c in classes]
        intervals = [r.volume_intervals_ml.get(c, {}).get("0.9") or [None, None] for c in bounded]
        bounds = ["" if b is None else f"{b:.3f}" for pair in intervals for b in pair]
        writer.writerow([rank, r.case, f"{r.score:.5f}", r.reason, *volumes, *bounds, regions, "; ".join(r.flags)])
    return buffer.getvalue()


def write_worklist(rows: list[WorklistRow], folder: str | Path, meta: dict[str, Any] | None = None) -> list[Path]:
    """Flag, sort and write ``worklist.json`` and ``worklist.csv`` into ``folder`` (each atomically).

    Returns the two paths.
    """
    folder = Path(folder)
    ordered = sort_rows(study_flags(rows))
    doc = {"meta": meta or {}, "cases": [r.to_dict() for r in ordered]}
    paths = [folder / WORKLIST_JSON, folder / WORKLIST_CSV]
    atomic_write_bytes(paths[0], json.dumps(doc, indent=1).encode())
    atomic_write_bytes(paths[1], csv_text(ordered).encode())
    return paths


def parse_worklist(doc: dict[str, Any], source: str = WORKLIST_JSON) -> list[WorklistRow]:
    """Rows of a ``worklist.json`` document, sorted most uncertain first."""
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise InputError(source, "not a worklist: expected an object with a 'cases' list")
    return sort_rows([WorklistRow.from_dict(d) for d in doc["cases"]])


def read_worklist(path: str | Path) -> list[WorklistRow]:
    """Rows of ``worklist.json`` (``path`` is the file or its folder), most uncertain first."""
    path = Path(path)
    path = path / WORKLIST_JSON if path.is_dir() else path
    return parse_worklist(read_json(path, "no worklist here; run `uqseg triage` first"), str(path))
