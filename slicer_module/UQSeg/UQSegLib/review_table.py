"""The review table of the Slicer module: ranked regions as rows, and their state as Slicer segment status.

Ranking itself is ``napari_uqseg.core.review`` (one implementation for both viewers); this file only turns a
``ReviewRanking`` into what the Slicer table and the segment status tags need (RAS centres, the class each
region belongs to, one status per segment). Pure numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review import build_review
from napari_uqseg.core.review_ranking import REVIEW_STATES, ReviewRanking
from napari_uqseg.core.volume import Volume

from .geometry import voxel_to_ras

#: segment tag Slicer's Segmentations module reads and shows as the segment status
STATUS_TAG = "Segmentation.Status"
#: Slicer's machine-readable segment status values
STATUS_NOT_STARTED, STATUS_IN_PROGRESS, STATUS_COMPLETED, STATUS_FLAGGED = (
    "notstarted",
    "inprogress",
    "completed",
    "flagged",
)
#: node attribute keeping every region's state as JSON, so a saved scene remembers the review
REGION_STATES_ATTRIBUTE = "UQSeg.RegionStates"
#: segment tag recording the class label a segment was made from
CLASS_TAG = "UQSeg.ClassLabel"


@dataclass(frozen=True)
class ReviewRow:
    """One row of the review table.

    Attributes
    ----------
    region_id : int
        Rank from the server's ranking (1 = most probably wrong voxels).
    label : int
        Predicted class the region belongs to (its segment); 0 when it lies in background only.
    score, peak : float
        Mean and maximum uncertainty in the region (map units, e.g. nats).
    volume_ml : float
        Region volume in millilitres.
    center_ras : tuple of float
        Region centroid in RAS mm, where the slice views jump to.
    state : str
        ``"todo"``, ``"done"`` or ``"flagged"``.
    expected_errors : float
        Voxels in the region that are probably wrong (``Region.expected_errors``, the ranking key).
    """

    region_id: int
    label: int
    score: float
    peak: float
    volume_ml: float
    center_ras: tuple[float, float, float]
    state: str
    expected_errors: float = 0.0


def table_cells(row: ReviewRow, class_names: dict[int, str]) -> tuple[str, ...]:
    """Texts of one review table row: rank, segment, wrong voxels, mean and peak uncertainty, mL, state."""
    return (
        str(row.region_id),
        class_names.get(row.label, "-"),
        f"{row.expected_errors:.1f}",
        f"{row.score:.3f}",
        f"{row.peak:.3f}",
        f"{row.volume_ml:.2f}",
        row.state,
    )


def rank_map(maps: dict[str, Volume], mask: Volume, map_name: str, axis: int = 2) -> ReviewRanking:
    """Rank the regions of another uncertainty map than the server ranked (same core algorithm).

    ``axis`` defaults to 2 (K), the axial slice index for a typical RAS-aligned scan.
    """
    if map_name not in maps:
        raise InputError("map", f"no uncertainty map {map_name!r}; available: {', '.join(sorted(maps))}")
    return build_review(maps[map_name].array, mask.array, axis=axis, map_name=map_name)


def region_label(mask_ijk: np.ndarray, bbox: tuple[tuple[int, int], ...]) -> int:
    """Most frequent non-zero label of ``mask_ijk`` inside ``bbox`` (0 if the box holds only background)."""
    box = tuple(slice(a, b) for a, b in bbox)
    values = np.asarray(mask_ijk)[box].ravel()
    counts = np.bincount(values[values > 0].astype(np.int64))
    return int(np.argmax(counts)) if counts.size else 0


def review_rows(ranking: ReviewRanking, mask: Volume) -> list[ReviewRow]:
    """Table rows in ranking order (most uncertain first) with RAS centres on ``mask``'s grid."""
    voxel_ml = float(abs(np.linalg.det(mask.affine[:3, :3]))) / 1000.0
    rows = []
    for region in ranking.regions:
        centre = voxel_to_ras(np.asarray(region.centroid[:3]), mask.affine)
        rows.append(
            ReviewRow(
                region_id=region.id,
                label=region_label(mask.array, region.bbox),
                score=region.score,
                peak=region.peak,
                volume_ml=region.voxels * voxel_ml,
                center_ras=(float(centre[0]), float(centre[1]), float(centre[2])),
                state=region.state,
                expected_errors=region.expected_errors,
            )
        )
    return rows


def segment_statuses(rows: list[ReviewRow], labels: list[int]) -> dict[int, str]:
    """Slicer segment status per class label from its regions' review states.

    Any flagged region flags the segment; all regions done completes it; some reviewed means in progress;
    a segment with no uncertain region counts as completed (nothing to check).
    """
    statuses = {}
    for label in labels:
        states = [r.state for r in rows if r.label == label]
        if "flagged" in states:
            statuses[label] = STATUS_FLAGGED
        elif all(s == "done" for s in states):
            statuses[label] = STATUS_COMPLETED
        elif any(s != "todo" for s in states):
            statuses[label] = STATUS_IN_PROGRESS
        else:
            statuses[label] = STATUS_NOT_STARTED
    return statuses


def encode_states(ranking: ReviewRanking) -> str:
    """JSON ``{"map": ..., "states": {region_id: state}}`` for the segmentation node attribute."""
    return json.dumps({"map": ranking.map_name, "states": {str(r.id): r.state for r in ranking.regions}})


def restore_states(ranking: ReviewRanking, text: str | None) -> None:
    """Apply states saved by :func:`encode_states` to ``ranking`` (ignored if it was for another map)."""
    if not text:
        return
    try:
        saved = json.loads(text)
        states = {int(k): str(v) for k, v in saved.get("states", {}).items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise InputError(REGION_STATES_ATTRIBUTE, f"saved review states are not valid JSON ({exc})") from exc
    if saved.get("map") != ranking.map_name:
        return
    known = {r.id for r in ranking.regions}
    for region_id, state in states.items():
        if region_id in known and state in REVIEW_STATES:
            ranking.set_state(region_id, state)
