"""The review queue's records: a ranked case (``ReviewRanking``) and its uncertain regions (``Region``).

Plain data with JSON round trips (``to_dict``/``from_dict``) and the reviewer's per-region state; the
ranking that fills them is ``core.review.build_review``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_uqseg.core.errors import InputError

#: states a region can be in while reviewing
REVIEW_STATES = ("todo", "done", "flagged")


@dataclass
class Region:
    """One connected uncertain region.

    Attributes
    ----------
    id : int
        1-based rank (1 = reviewed first).
    score : float
        Mean uncertainty in the region.
    peak : float
        Maximum uncertainty in the region.
    voxels : int
        Region size in voxels.
    centroid : tuple of float
        Geometric centre in voxel coordinates, one value per axis.
    bbox : tuple of (int, int)
        Per axis ``(start, stop)``, start inclusive, stop exclusive.
    slice_index : int
        Centroid along the ranking's ``axis`` rounded half up (the slice to show).
    mass : float
        Sum of uncertainty in the region.
    expected_errors : float
        Voxels in the region that are probably wrong: the sum of ``1 - max_c p_c`` (the predicted class's
        complement) over its voxels. The ranking key when the probabilities are known.
    state : str
        One of ``"todo"``, ``"done"``, ``"flagged"``.
    """

    id: int
    score: float
    peak: float
    voxels: int
    centroid: tuple[float, ...]
    bbox: tuple[tuple[int, int], ...]
    slice_index: int
    mass: float = 0.0
    state: str = "todo"
    expected_errors: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists)."""
        return {
            "id": int(self.id),
            "score": float(self.score),
            "peak": float(self.peak),
            "voxels": int(self.voxels),
            "centroid": [float(c) for c in self.centroid],
            "bbox": [[int(a), int(b)] for a, b in self.bbox],
            "slice_index": int(self.slice_index),
            "mass": float(self.mass),
            "state": str(self.state),
            "expected_errors": float(self.expected_errors),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Region:
        return cls(
            id=int(d["id"]),
            score=float(d["score"]),
            peak=float(d["peak"]),
            voxels=int(d["voxels"]),
            centroid=tuple(float(c) for c in d["centroid"]),
            bbox=tuple((int(a), int(b)) for a, b in d["bbox"]),
            slice_index=int(d["slice_index"]),
            mass=float(d.get("mass", 0.0)),
            state=str(d.get("state", "todo")),
            expected_errors=float(d.get("expected_errors", 0.0)),
        )


@dataclass
class ReviewRanking:
    """Review queue of one case for one uncertainty map.

    Attributes
    ----------
    map_name : str
        Uncertainty map ranked (``"entropy"``, ...).
    axis : int
        Slicing axis of ``slice_scores`` and ``Region.slice_index``.
    case_score : float
        The case score of the worklist (higher = more likely a failure): the method's default among
        ``case_scores`` (``core.case_scores.case_score_for``).
    slice_scores : list of float
        One score per index along ``axis`` (see :func:`slice_scores`).
    regions : list of Region
        Ranked regions, ``regions[0].id == 1``.
    threshold : float
        Uncertainty above which voxels formed regions.
    case_score_name : str
        Which score ``case_score`` is (``core.case_scores.DESCRIPTIONS``).
    case_scores : dict of str to float
        Every case score computed for this prediction.
    rank_by : str
        Region ranking key: ``"expected_errors"`` (probabilities known) or ``"mass"``.
    max_region_voxels : int
        No region is larger than this (0: not bounded; rankings written before the bound).
    """

    map_name: str
    axis: int
    case_score: float
    slice_scores: list[float]
    regions: list[Region] = field(default_factory=list)
    threshold: float = float("nan")
    case_score_name: str = "mean_uncertainty"
    case_scores: dict[str, float] = field(default_factory=dict)
    rank_by: str = "mass"
    max_region_voxels: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "map_name": self.map_name,
            "axis": int(self.axis),
            "case_score": float(self.case_score),
            "slice_scores": [float(s) for s in self.slice_scores],
            "regions": [r.to_dict() for r in self.regions],
            "threshold": float(self.threshold),
            "case_score_name": self.case_score_name,
            "case_scores": {str(k): float(v) for k, v in self.case_scores.items()},
            "rank_by": self.rank_by,
            "max_region_voxels": int(self.max_region_voxels),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReviewRanking:
        return cls(
            map_name=str(d["map_name"]),
            axis=int(d["axis"]),
            case_score=float(d["case_score"]),
            slice_scores=[float(s) for s in d["slice_scores"]],
            regions=[Region.from_dict(r) for r in d.get("regions", [])],
            threshold=float(d.get("threshold", float("nan"))),
            case_score_name=str(d.get("case_score_name", "mean_uncertainty")),
            case_scores={str(k): float(v) for k, v in dict(d.get("case_scores", {})).items()},
            rank_by=str(d.get("rank_by", "mass")),
            max_region_voxels=int(d.get("max_region_voxels", 0)),
        )

    def slices_by_score(self) -> list[int]:
        """Slice indices, most uncertain first (equal scores: lower index first)."""
        return [int(i) for i in np.argsort(-np.asarray(self.slice_scores, dtype=np.float64), kind="stable")]

    def region(self, region_id: int) -> Region:
        """The region with ``id == region_id``; InputError if there is none."""
        for region in self.regions:
            if region.id == region_id:
                return region
        raise InputError("region_id", f"no region {region_id} (have {len(self.regions)})")

    def set_state(self, region_id: int, state: str) -> None:
        """Mark a region ``"todo"``, ``"done"`` or ``"flagged"``."""
        if state not in REVIEW_STATES:
            raise InputError("state", f"unknown review state {state!r}; choose one of {', '.join(REVIEW_STATES)}")
        self.region(region_id).state = state

    def reviewed_count(self) -> int:
        """Regions no longer ``"todo"`` (done or flagged)."""
        return sum(r.state != "todo" for r in self.regions)
