"""Review table rows and Slicer segment statuses from a core ``ReviewRanking``."""

from __future__ import annotations

import numpy as np
import pytest
from UQSegLib import review_table
from UQSegLib.review_table import ReviewRow

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review import build_review
from napari_uqseg.core.volume import Volume


def row(region_id: int, label: int, state: str) -> ReviewRow:
    return ReviewRow(region_id, label, 0.5, 0.9, 1.0, (0.0, 0.0, 0.0), state)


def test_segment_status_follows_its_regions():
    rows = [row(1, 1, "done"), row(2, 1, "done"), row(3, 2, "done"), row(4, 2, "todo"), row(5, 3, "flagged")]
    rows += [row(6, 3, "done"), row(7, 4, "todo")]
    assert review_table.segment_statuses(rows, [1, 2, 3, 4, 5]) == {
        1: "completed",
        2: "inprogress",
        3: "flagged",
        4: "notstarted",
        5: "completed",  # no uncertain region: nothing to check
    }


def test_region_label_is_the_dominant_foreground_class():
    mask = np.zeros((6, 6, 6), np.uint8)
    mask[0:3] = 1
    mask[3:6, 0:5] = 2
    assert review_table.region_label(mask, ((2, 6), (0, 6), (0, 6))) == 2
    assert review_table.region_label(np.zeros((4, 4, 4), np.uint8), ((0, 4), (0, 4), (0, 4))) == 0


def test_rows_have_ras_centres_and_millilitres():
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    affine[:3, 3] = [-10.0, 4.0, 1.0]
    mask = np.zeros((8, 8, 8), np.uint8)
    mask[2:6, 2:6, 2:6] = 1
    u = np.zeros((8, 8, 8))
    u[2:4, 2:4, 2:4] = 1.0
    ranking = build_review(u, mask, axis=2, min_voxels=1, threshold=0.5)
    (only,) = review_table.review_rows(ranking, Volume(mask, affine))
    np.testing.assert_allclose(only.center_ras, [-10 + 2 * 2.5, 4 + 2 * 2.5, 1 + 2.5 * 2.5])
    assert only.volume_ml == pytest.approx(8 * 10.0 / 1000.0)
    assert only.label == 1 and only.state == "todo"


def test_states_round_trip_and_ignore_another_map():
    mask = np.ones((6, 6, 6), np.uint8)
    u = np.zeros((6, 6, 6))
    u[0:2, 0:2, 0:2], u[4:6, 4:6, 4:6] = 1.0, 0.8
    ranking = build_review(u, mask, min_voxels=1, threshold=0.5)
    ranking.set_state(2, "flagged")
    text = review_table.encode_states(ranking)
    fresh = build_review(u, mask, min_voxels=1, threshold=0.5)
    review_table.restore_states(fresh, text)
    assert [r.state for r in fresh.regions] == ["todo", "flagged"]
    other = build_review(u, mask, map_name="mutual_information", min_voxels=1, threshold=0.5)
    review_table.restore_states(other, text)
    assert [r.state for r in other.regions] == ["todo", "todo"]
    with pytest.raises(InputError, match="UQSeg.RegionStates"):
        review_table.restore_states(fresh, "{not json")


def test_table_cells_name_the_segment_and_round_the_figures():
    cells = review_table.table_cells(
        ReviewRow(3, 2, 0.12345, 0.9, 1.234, (0.0, 0.0, 0.0), "flagged", 6.54), {1: "head", 2: "tail"}
    )
    assert cells == ("3", "tail", "6.5", "0.123", "0.900", "1.23", "flagged")
    assert review_table.table_cells(row(1, 0, "todo"), {1: "head"})[1] == "-"  # background-only region
