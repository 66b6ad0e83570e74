"""The worklist table of the Slicer module: a triage's cases, most uncertain first, and opening one of them.

The worklist comes from a ``uqseg triage`` folder or a server's triage job
(``napari_uqseg.client.worklist_source``); this file only turns it into table rows and a case into the
Slicer-ordered ``SegmentationResult`` the result view shows. Pure numpy (no Slicer).
"""

from __future__ import annotations

import numpy as np

from napari_uqseg.client.worklist_source import WorklistSource
from napari_uqseg.core.worklist import WorklistRow, volume_summary

from .geometry import kji_from_volume
from .logic import SegmentationResult, result_in_kji

WORKLIST_COLUMNS = ("#", "Case", "Score", "Flags", "Volume (mL)", "Volumes, 90% interval [mL]", "Why")


def table_rows(rows: list[WorklistRow]) -> list[tuple[str, ...]]:
    """Display text per row, in worklist order (rank, case, score, flags, total volume, each structure's volume
    with its 90 % conformal interval where the model is calibrated, reason); volumes in mL."""
    return [
        (
            str(rank),
            r.case,
            f"{r.score:.4f}",
            ", ".join(r.flags),
            f"{sum(r.volumes_ml.values()):.2f}",
            volume_summary(r.volumes_ml, r.volume_intervals_ml),
            r.reason,
        )
        for rank, r in enumerate(rows, start=1)
    ]


def open_case(source: WorklistSource, case: str) -> tuple[np.ndarray, SegmentationResult]:
    """The case's image as a ``(K, J, I)`` array and its prediction on that grid (IJK-to-RAS in the result)."""
    image, result = source.open_case(case)
    shape_kji = tuple(reversed(image.array.shape))
    image_kji = kji_from_volume(image, image.affine, shape_kji, case)
    labels = {str(k): str(v) for k, v in source.meta.get("labels", {}).items()}
    return image_kji, result_in_kji(result, image.affine, shape_kji, labels=labels)
