"""Review state behind the napari review panel, with no Qt: a cursor over one case's ranked regions, and the case list.

The panel only renders these objects and forwards clicks and keys to them, so the walk through a review
(select, next/previous, mark done or flagged, "k of n reviewed") is tested without a display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review_ranking import Region, ReviewRanking

#: table columns of the region table, in display order
#: "wrong" (voxels probably wrong: sum of 1 - confidence) is the ranking key; "mass" the sum of uncertainty,
#: "mean" its average per voxel
REGION_COLUMNS = ("#", "wrong", "mass", "mean", "voxels", "slice", "state")


class ReviewCursor:
    """A cursor over the ranked regions of one case (most uncertain first): select, next, previous, mark.

    Parameters
    ----------
    ranking : ReviewRanking
        The case's ranking; its regions' ``state`` fields are updated in place, so the ranking sent
        with a correction carries the review state.
    """

    def __init__(self, ranking: ReviewRanking) -> None:
        self.ranking = ranking
        self._index: int | None = 0 if ranking.regions else None

    @property
    def total(self) -> int:
        """Number of ranked regions."""
        return len(self.ranking.regions)

    @property
    def reviewed(self) -> int:
        """Regions marked done or flagged."""
        return self.ranking.reviewed_count()

    @property
    def index(self) -> int | None:
        """Row of the current region (0-based), ``None`` when there are no regions."""
        return self._index

    @property
    def current(self) -> Region | None:
        """The region under review, ``None`` when there are no regions."""
        return None if self._index is None else self.ranking.regions[self._index]

    def select(self, row: int) -> Region:
        """Make row ``row`` (0-based, table order) current and return its region.

        Raises
        ------
        InputError
            ``row`` outside the table.
        """
        if not 0 <= row < self.total:
            raise InputError("row", f"no region at row {row} (there are {self.total})")
        self._index = row
        return self.ranking.regions[row]

    def next(self) -> Region | None:
        """Move to the next row (stays on the last one); returns the new current region."""
        if self._index is not None:
            self._index = min(self._index + 1, self.total - 1)
        return self.current

    def previous(self) -> Region | None:
        """Move to the previous row (stays on the first one); returns the new current region."""
        if self._index is not None:
            self._index = max(self._index - 1, 0)
        return self.current

    def next_todo(self) -> Region | None:
        """Move to the first region after the current one still marked ``"todo"`` (wrapping around).

        Returns the current region unchanged when every region is reviewed.
        """
        if self._index is None:
            return None
        for step in range(1, self.total + 1):
            row = (self._index + step) % self.total
            if self.ranking.regions[row].state == "todo":
                self._index = row
                break
        return self.current

    def mark(self, state: str, advance: bool = True) -> Region | None:
        """Set the current region's state (``"todo"``, ``"done"``, ``"flagged"``), then go to the next to-do.

        Returns the region that is current afterwards.

        Raises
        ------
        InputError
            Unknown state or no regions.
        """
        region = self.current
        if region is None:
            raise InputError("review", "there is no region to mark (the case has no regions)")
        self.ranking.set_state(region.id, state)
        return self.next_todo() if advance and state != "todo" else self.current

    def progress_text(self) -> str:
        """``"k of n reviewed"``."""
        return f"{self.reviewed} of {self.total} reviewed"

    def rows(self) -> list[tuple[str, ...]]:
        """One tuple of display strings per region, in :data:`REGION_COLUMNS` order."""
        return [
            (
                str(r.id),
                f"{r.expected_errors:.1f}",
                f"{r.mass:.2f}",
                f"{r.score:.3f}",
                str(r.voxels),
                str(r.slice_index),
                r.state,
            )
            for r in self.ranking.regions
        ]

    def slice_rows(self, top: int | None = 20) -> list[tuple[int, float]]:
        """``(slice index, score)`` of the most uncertain slices along the ranking's axis, worst first."""
        order = self.ranking.slices_by_score()
        order = order if top is None else order[:top]
        return [(i, float(self.ranking.slice_scores[i])) for i in order]


@dataclass(order=True)
class CaseEntry:
    """One open image in the case list.

    Attributes
    ----------
    sort_key : tuple
        Derived; orders predicted cases by descending score, then unpredicted ones by name.
    name : str
        napari image layer name.
    score : float
        Case uncertainty score (NaN: not predicted yet).
    """

    sort_key: tuple[int, float, str] = field(init=False, repr=False)
    name: str = field(compare=False)
    score: float = field(default=float("nan"), compare=False)

    def __post_init__(self) -> None:
        scored = not math.isnan(self.score)
        self.sort_key = (0 if scored else 1, -self.score if scored else 0.0, self.name)

    def label(self) -> str:
        """Display text: name and score, or a note that it has no prediction yet."""
        return f"{self.name}  —  {self.score:.3f}" if not math.isnan(self.score) else f"{self.name}  —  not predicted"


def sorted_cases(scores: dict[str, float]) -> list[CaseEntry]:
    """Case list from ``{image layer name: case score or NaN}``, most uncertain first, unpredicted last."""
    return sorted(CaseEntry(name, float(score)) for name, score in scores.items())
