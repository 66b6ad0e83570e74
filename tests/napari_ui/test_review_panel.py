"""Review cursor state (no Qt) and the review panel driving a real viewer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review import build_review
from napari_uqseg.napari_ui.layers import viewer_camera
from napari_uqseg.napari_ui.review_model import REGION_COLUMNS, ReviewCursor, sorted_cases


def _ranking():
    """Three separate hot spots of different mass inside a predicted ball."""
    shape = (20, 20, 20)
    mask = np.zeros(shape, np.uint8)
    mask[4:16, 4:16, 4:16] = 1
    u = np.full(shape, 0.01, np.float32)
    u[5:9, 5:9, 5:9] = 0.9  # biggest mass: rank 1
    u[12:14, 12:14, 12:14] = 0.8
    u[5:7, 12:14, 12:14] = 0.5
    return build_review(u, mask, threshold=0.2, min_voxels=1)


def test_cursor_walks_marks_and_counts():
    cursor = ReviewCursor(_ranking())
    assert cursor.total == 3 and cursor.index == 0 and cursor.current.id == 1
    assert cursor.progress_text() == "0 of 3 reviewed"
    assert [r[0] for r in cursor.rows()] == ["1", "2", "3"]
    first = dict(zip(REGION_COLUMNS, cursor.rows()[0]))
    assert first["state"] == "todo" and float(first["mean"]) > 0.5
    masses = [float(dict(zip(REGION_COLUMNS, r))["mass"]) for r in cursor.rows()]
    assert masses == sorted(masses, reverse=True)  # the shown ranking key explains the order
    assert cursor.next().id == 2 and cursor.next().id == 3 and cursor.next().id == 3  # stays on the last
    assert cursor.previous().id == 2 and cursor.select(0).id == 1 and cursor.previous().id == 1
    assert cursor.mark("done").id == 2  # moves on to the next to-do
    assert cursor.mark("flagged").id == 3
    assert cursor.progress_text() == "2 of 3 reviewed"
    assert cursor.mark("done").id == 3  # nothing left to do: stays
    assert cursor.progress_text() == "3 of 3 reviewed"
    assert [r.state for r in cursor.ranking.regions] == ["done", "flagged", "done"]  # state lives in the ranking
    cursor.select(1)
    assert cursor.mark("todo").id == 2 and cursor.reviewed == 2


def test_cursor_next_todo_wraps_around():
    cursor = ReviewCursor(_ranking())
    cursor.select(2)
    cursor.mark("done")
    assert cursor.index == 0  # wrapped to the first region still to do


def test_cursor_rejects_bad_rows_and_states():
    cursor = ReviewCursor(_ranking())
    with pytest.raises(InputError, match="row 7"):
        cursor.select(7)
    with pytest.raises(InputError, match="unknown review state"):
        cursor.mark("maybe")
    empty = ReviewCursor(build_review(np.zeros((6, 6, 6)), np.zeros((6, 6, 6)), threshold=0.5))
    assert empty.current is None and empty.next() is None and empty.progress_text() == "0 of 0 reviewed"
    with pytest.raises(InputError, match="has no regions"):
        empty.mark("done")


def test_slice_rows_are_worst_first():
    cursor = ReviewCursor(_ranking())
    rows = cursor.slice_rows(top=5)
    scores = [s for _, s in rows]
    assert scores == sorted(scores, reverse=True) and len(rows) == 5
    assert rows[0][0] in range(5, 9)


def test_cases_sorted_by_score_unpredicted_last():
    cases = sorted_cases({"b": 0.2, "a": float("nan"), "c": 0.7, "d": 0.2})
    assert [c.name for c in cases] == ["c", "b", "d", "a"]
    assert cases[0].label() == "c  —  0.700" and "not predicted" in cases[-1].label()
    assert math.isnan(cases[-1].score)


# --- the panel on a real viewer -------------------------------------------------------------------------


def _world_slice(layer, region, axis):
    """World coordinate, along the slider's axis, of the region's slice (the review ranking's ``axis``)."""
    voxel = np.array(region.centroid, dtype=float)
    voxel[axis] = region.slice_index
    return layer.data_to_world(voxel)[axis]


def _click_row(qtbot, table, row):
    from qtpy.QtCore import Qt

    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


@pytest.mark.gui
def test_review_panel_moves_the_viewer_and_walks_by_keyboard(driver, qtbot, local_data_dir):
    from qtpy.QtCore import Qt

    from napari_uqseg.napari_ui.io import sample_volumes
    from napari_uqseg.napari_ui.layers import layer_kwargs

    viewer, widget = driver.open()
    second, _ = sample_volumes(seed=7)
    viewer.add_image(second.array, name="second scan", **layer_kwargs(second))
    driver.connect_local(widget, local_data_dir)
    driver.predict(widget, "tiny_mcd", image="second scan")
    driver.predict(widget, "tiny_mcd", image="synthetic scan")

    # cases sorted by case score, most uncertain first
    scores = {name: case.result.review.case_score for name, case in widget.cases.items()}
    listed = [widget.review.cases.item(i).data(Qt.ItemDataRole.UserRole) for i in range(widget.review.cases.count())]
    assert listed == sorted(scores, key=lambda n: -scores[n])
    assert widget.current == "synthetic scan"

    case, regions = widget.cases["synthetic scan"], widget.review.regions
    mask = case.layers.mask
    assert regions.rowCount() >= 4
    _click_row(qtbot, regions, 2)
    region = case.cursor.current
    assert region.id == 3
    axis = case.cursor.ranking.axis  # the slider's axis (napari_ui.orientation)
    assert axis == viewer.dims.order[0]
    step = abs(mask.scale[axis]) / 2 + 1e-6
    assert abs(viewer.dims.point[axis] - _world_slice(mask, region, axis)) <= step
    shown = list(viewer.dims.order[-2:])
    np.testing.assert_allclose(
        np.asarray(viewer_camera(viewer).center)[-2:], np.asarray(mask.data_to_world(region.centroid))[shown], atol=1e-3
    )

    # keyboard: P goes back, D marks done and moves on, F flags
    regions.setFocus()
    qtbot.keyClick(regions, Qt.Key.Key_P)
    assert case.cursor.current.id == 2 and regions.currentRow() == 1
    assert abs(viewer.dims.point[axis] - _world_slice(mask, case.cursor.current, axis)) <= step
    qtbot.keyClick(regions, Qt.Key.Key_D)
    assert case.cursor.ranking.region(2).state == "done" and case.cursor.current.id == 3
    qtbot.keyClick(regions, Qt.Key.Key_F)
    assert case.cursor.ranking.region(3).state == "flagged"
    assert widget.review.progress.text() == f"2 of {case.cursor.total} reviewed"
    qtbot.keyClick(regions, Qt.Key.Key_P)
    assert case.cursor.current.id == 3  # F moved on to region 4; P comes back
    qtbot.keyClick(regions, Qt.Key.Key_N)
    assert case.cursor.current.id == 4
    state = REGION_COLUMNS.index("state")
    assert regions.item(1, state).text() == "done" and regions.item(2, state).text() == "flagged"

    # a slice row jumps to that slice
    target = int(widget.review.slices.item(0, 0).text())
    _click_row(qtbot, widget.review.slices, 0)
    assert viewer.dims.current_step[axis] == target

    # another case: its own cursor, untouched review state
    other = [i for i in range(widget.review.cases.count()) if "second scan" in widget.review.cases.item(i).text()][0]
    item = widget.review.cases.item(other)
    qtbot.mouseClick(
        widget.review.cases.viewport(), Qt.MouseButton.LeftButton, pos=widget.review.cases.visualItemRect(item).center()
    )
    assert widget.current == "second scan"
    assert widget.review.cursor is widget.cases["second scan"].cursor
    assert widget.review.progress.text() == f"0 of {widget.cases['second scan'].cursor.total} reviewed"
