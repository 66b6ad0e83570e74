"""What the "Explore evaluation" widget shows, without Qt: table rows, sorting, silent failures, compare diffs,
layer specifications and plot data. The Qt widget (``explorer_widget``) only renders this model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.report import FALSE_NEGATIVE, FALSE_POSITIVE, Report
from napari_uqseg.core.volume_intervals import volume_text

TRANSPARENT = (0.0, 0.0, 0.0, 0.0)
#: error-map colours (RGBA): vermillion false positives, blue false negatives (Okabe-Ito, colour-blind safe)
ERROR_COLOURS = {0: TRANSPARENT, FALSE_POSITIVE: (0.835, 0.369, 0.0, 1.0), FALSE_NEGATIVE: (0.0, 0.447, 0.698, 1.0)}

#: sortable columns -> (header, worst-first order is descending?)
COLUMNS: dict[str, tuple[str, bool]] = {
    "dice": ("Dice", False),
    "case_score": ("case uncertainty", True),
    "ece": ("ECE", True),
    "silent_failure": ("silent failure", True),
}
#: extra columns in compare mode: B minus A
COMPARE_COLUMNS: dict[str, tuple[str, bool]] = {
    "delta_dice": ("Δ Dice (B-A)", False),
    "delta_case_score": ("Δ uncertainty (B-A)", True),
    "delta_ece": ("Δ ECE (B-A)", True),
}


def silent_failure_scores(dice: np.ndarray, case_scores: np.ndarray) -> np.ndarray:
    """How much a case is a failure that uncertainty missed: ``(1 - Dice) * (1 - q)``.

    Parameters
    ----------
    dice, case_scores : np.ndarray
        ``(N,)`` per-case Dice and case uncertainty score.

    Returns
    -------
    np.ndarray
        ``(N,)`` in ``[0, 1]``; ``q`` is the case score's rank within the report scaled to ``[0, 1]``
        (0 = least uncertain; average ranks for ties), so the score does not depend on the map's units.
        High = low Dice and low uncertainty. NaN where Dice or the score is NaN.
    """
    d = np.asarray(dice, dtype=np.float64)
    s = np.asarray(case_scores, dtype=np.float64)
    out = np.full(d.shape, np.nan)
    ok = np.isfinite(d) & np.isfinite(s)
    n = int(ok.sum())
    if n == 0:
        return out
    q = (stats.rankdata(s[ok]) - 1.0) / (n - 1) if n > 1 else np.zeros(1)
    out[ok] = (1.0 - d[ok]) * (1.0 - q)
    return out


@dataclass
class LayerSpec:
    """One napari layer to add: ``kind`` is ``"image"`` or ``"labels"``; ``options`` go to ``add_image``/``add_labels``
    (``colors``: label -> RGBA for labels layers)."""

    name: str
    kind: str
    data: np.ndarray
    affine: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)


class ExplorerModel:
    """One report, or two (A and B: two methods on the same cases) to compare.

    Parameters
    ----------
    report : Report
        Report A.
    other : Report, optional
        Report B; the table then shows B - A for the cases both hold.
    """

    def __init__(self, report: Report, other: Report | None = None) -> None:
        self.report = report
        self.other = other
        if other is not None and not {r.case_id for r in report.cases} & {r.case_id for r in other.cases}:
            raise InputError(str(other.path), f"shares no case with {report.path}; compare reports of the same data")
        self._silent = dict(
            zip(
                [r.case_id for r in report.cases],
                silent_failure_scores(
                    np.array([r.dice for r in report.cases]), np.array([r.case_score for r in report.cases])
                ),
                strict=True,
            )
        )

    @property
    def columns(self) -> dict[str, tuple[str, bool]]:
        """Sortable columns in display order (compare columns only with a second report)."""
        return {**COLUMNS, **(COMPARE_COLUMNS if self.other is not None else {})}

    def rows(self) -> list[dict[str, Any]]:
        """One dict per case of report A: ``case_id`` and a float per column (NaN where undefined)."""
        out = []
        other = {r.case_id: r for r in self.other.cases} if self.other is not None else {}
        for row in self.report.cases:
            values: dict[str, Any] = {
                "case_id": row.case_id,
                "dice": row.dice,
                "case_score": row.case_score,
                "ece": row.ece,
                "silent_failure": float(self._silent[row.case_id]),
            }
            if self.other is not None:
                b = other.get(row.case_id)
                for key in ("dice", "case_score", "ece"):
                    values[f"delta_{key}"] = float(getattr(b, key) - getattr(row, key)) if b else float("nan")
            out.append(values)
        return out

    def sorted_rows(self, key: str, descending: bool | None = None) -> list[dict[str, Any]]:
        """Rows sorted by ``key``; default order is worst first (see :data:`COLUMNS`); NaN always last,
        ties by case id."""
        if key != "case_id" and key not in self.columns:
            raise InputError("sort", f"unknown column {key!r}; choose one of {', '.join(self.columns)}")
        desc = self.columns[key][1] if descending is None and key != "case_id" else bool(descending)
        rows = sorted(self.rows(), key=lambda r: r["case_id"])
        if key == "case_id":
            return rows[::-1] if desc else rows
        finite = [r for r in rows if np.isfinite(r[key])]
        missing = [r for r in rows if not np.isfinite(r[key])]
        return sorted(finite, key=lambda r: r[key], reverse=desc) + missing

    def common_case(self, case_id: str) -> bool:
        """Whether both reports hold ``case_id`` (always True without a second report)."""
        return self.other is None or case_id in {r.case_id for r in self.other.cases}

    def layers(self, case_id: str, which: int = 0) -> list[LayerSpec]:
        """Image, ground truth, prediction, error map and uncertainty of a case in report A (0) or B (1).

        In compare mode every name carries `` [A]`` or `` [B]`` so both sets can live in one viewer.
        """
        report = self.report if which == 0 else self.other
        if report is None:
            raise InputError("which", "there is no second report to compare with")
        suffix = "" if self.other is None else f" [{'AB'[which]}]"
        volumes = report.load_case(case_id)
        image = volumes["image"].array
        lo, hi = np.percentile(image, [0.5, 99.5])
        affine = volumes["image"].affine
        umax = float(volumes["uncertainty"].array.max(initial=0.0))
        # error map on top so FP/FN colours stay visible; GT and prediction start hidden (toggle to inspect)
        return [
            LayerSpec(
                f"image{suffix}", "image", image, affine, {"colormap": "gray", "contrast_limits": _limits(lo, hi)}
            ),
            LayerSpec(
                f"uncertainty: {report.map_name}{suffix}",
                "image",
                volumes["uncertainty"].array,
                affine,
                {"colormap": "inferno", "blending": "additive", "opacity": 0.5, "contrast_limits": _limits(0.0, umax)},
            ),
            LayerSpec(
                f"ground truth{suffix}", "labels", volumes["label"].array, affine, {"opacity": 0.4, "visible": False}
            ),
            LayerSpec(
                f"prediction{suffix}", "labels", volumes["prediction"].array, affine, {"opacity": 0.5, "visible": False}
            ),
            LayerSpec(
                f"error{suffix}", "labels", volumes["error"].array, affine, {"colors": ERROR_COLOURS, "opacity": 0.9}
            ),
        ]

    def worst_point(self, case_id: str) -> np.ndarray:
        """World (RAS mm) position of the case's worst region: the centroid of its largest error component,
        or the volume centre when the prediction is perfect. ``(3,)`` float64."""
        detail = self.report.case_detail(case_id)
        affine = np.asarray(detail["affine"], dtype=np.float64)
        region = detail.get("worst_region")
        voxel = np.asarray(region["centroid"] if region else (np.asarray(detail["shape"]) - 1) / 2.0, dtype=np.float64)
        return affine[:3, :3] @ voxel + affine[:3, 3]

    def plot_data(self, case_id: str) -> dict[str, Any]:
        """What the plot panel draws for a case.

        Returns
        -------
        dict
            ``case_id``; ``reliability`` (the case's bins: ``counts``, ``mean_confidence``, ``accuracy``);
            ``risk_coverage`` (``x`` coverage, ``y`` risk); ``scatter``: ``case_ids``, ``case_scores``, ``dice``
            of every case of report A and ``highlight``, the index of ``case_id``; ``failure_dice``.
        """
        detail = self.report.case_detail(case_id)
        ids = [r.case_id for r in self.report.cases]
        return {
            "case_id": case_id,
            "reliability": detail["reliability"],
            "risk_coverage": detail["risk_coverage"],
            "scatter": {
                "case_ids": ids,
                "case_scores": [r.case_score for r in self.report.cases],
                "dice": [r.dice for r in self.report.cases],
                "highlight": ids.index(case_id),
            },
            "failure_dice": float(self.report.meta.get("settings", {}).get("failure_dice", 0.8)),
        }


def volume_lines(detail: dict[str, Any], labels: dict[str, str], level: str = "0.9") -> list[str]:
    """Per structure of an evaluated case: predicted volume, its interval and the reference volume inside it or not.

    ``detail`` is a report's ``case.json`` (``volumes`` since ``uqseg conformal``; older reports give no lines).
    """
    volumes = detail.get("volumes") or {}
    lines = volume_text(volumes, labels, level)
    for i, (c, entry) in enumerate(volumes.get("classes", {}).items()):
        true = volumes.get("true", {}).get(c)
        bounds = entry.get("intervals", {}).get(level)
        if true is None:
            continue
        inside = "" if not bounds else (" - inside" if bounds[0] <= true <= (bounds[1] or math.inf) else " - OUTSIDE")
        lines[i] += f"; reference {true:.2f} mL{inside}"
    return lines


def _limits(lo: float, hi: float) -> tuple[float, float]:
    """Contrast limits napari accepts (hi > lo even for a constant image)."""
    lo, hi = float(lo), float(hi)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
