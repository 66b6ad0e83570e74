"""Review queue state (no Qt) and the review panel driving a real viewer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review import build_review
from napari_uqseg.napari_ui.review_model import ReviewQueue, sorted_cases


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


def test_queue_walks_marks_and_counts():
    queue = ReviewQueue(_ranking())
    assert queue.total == 3 and queue.index == 0 and queue.current.id == 1
    assert queue.progress_text() == "0 of 3 reviewed"
    assert [r[0] for r in queue.rows()] == ["1", "2", "3"]
    assert queue.rows()[0][4] == "todo" and float(queue.rows()[0][1]) > 0.5
    assert queue.next().id == 2 and queue.next().id == 3 and queue.next().id == 3  # stays on the last
    assert queue.previous().id == 2 and queue.select(0).id == 1 and queue.previous().id == 1
    assert queue.mark("done").id == 2  # moves on to the next to-do
    assert queue.mark("flagged").id == 3
    assert queue.progress_text() == "2 of 3 reviewed"
    assert queue.mark("done").id == 3  # nothing left to do: stays
    assert queue.progress_text() == "3 of 3 reviewed"
    assert [r.state for r in queue.ranking.regions] == ["done", "flagged", "done"]  # state lives in the ranking
    queue.select(1)
    assert queue.mark("todo").id == 2 and queue.reviewed == 2


def test_queue_next_todo_wraps_around():
    queue = ReviewQueue(_ranking())
    queue.select(2)
    queue.mark("done")
    assert queue.index == 0  # wrapped to the first region still to do


def test_queue_rejects_bad_rows_and_states():
    queue = ReviewQueue(_ranking())
    with pytest.raises(InputError, match="row 7"):
        queue.select(7)
    with pytest.raises(InputError, match="unknown review state"):
        queue.mark("maybe")
    empty = ReviewQueue(build_review(np.zeros((6, 6, 6)), np.zeros((6, 6, 6)), threshold=0.5))
    assert empty.current is None and empty.next() is None and empty.progress_text() == "0 of 0 reviewed"
    with pytest.raises(InputError, match="queue is empty"):
        empty.mark("done")


def test_slice_rows_are_worst_first():
    queue = ReviewQueue(_ranking())
    rows = queue.slice_rows(top=5)
    scores = [s for _, s in rows]
    assert scores == sorted(scores, reverse=True) and len(rows) == 5
    assert rows[0][0] in range(5, 9)


def test_cases_sorted_by_score_unpredicted_last():
    cases = sorted_cases({"b": 0.2, "a": float("nan"), "c": 0.7, "d": 0.2})
    assert [c.name for c in cases] == ["c", "b", "d", "a"]
    assert cases[0].label() == "c  —  0.700" and "not predicted" in cases[-1].label()
    assert math.isnan(cases[-1].score)
