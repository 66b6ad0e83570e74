"""The reviewed mask a correction carries: the viewers' rule (done regions' boxes + edited voxels) and its checks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review_ranking import Region, ReviewRanking
from napari_uqseg.core.reviewed import check_reviewed_mask, reviewed_mask


def _ranking() -> ReviewRanking:
    regions = [
        Region(1, 0.9, 1.0, 8, (1.5, 1.5, 1.5), ((1, 3), (1, 3), (1, 3)), 1),
        Region(2, 0.8, 0.9, 4, (6.0, 6.0, 6.0), ((5, 7), (5, 7), (6, 7)), 6),
        Region(3, 0.7, 0.8, 1, (9.0, 9.0, 9.0), ((9, 10), (9, 10), (9, 10)), 9),
    ]
    return ReviewRanking("entropy", 0, 0.5, [0.0] * 10, regions, 0.5)


def test_no_region_done_means_the_whole_case_was_reviewed():
    predicted = np.zeros((10, 10, 10), np.uint8)
    label = predicted.copy()
    label[0, 0, 0] = 1
    assert reviewed_mask(_ranking(), label, predicted) is None


def test_done_boxes_and_edited_voxels_are_reviewed_flagged_and_todo_are_not():
    ranking = _ranking()
    ranking.set_state(1, "done")
    ranking.set_state(3, "flagged")
    predicted = np.zeros((10, 10, 10), np.uint8)
    label = predicted.copy()
    label[8, 0, 0] = 2  # an edit outside every region
    mask = reviewed_mask(ranking, label, predicted)
    expected = np.zeros((10, 10, 10), bool)
    expected[1:3, 1:3, 1:3] = True
    expected[8, 0, 0] = True
    assert mask.dtype == bool and np.array_equal(mask, expected)
    with pytest.raises(InputError, match="shape"):
        reviewed_mask(ranking, label[:5], predicted)


def test_check_reviewed_mask():
    good = np.zeros((4, 4, 4), np.uint8)
    good[1] = 1
    assert check_reviewed_mask(good[..., None], (4, 4, 4)).sum() == 16  # a trailing NIfTI axis is dropped
    with pytest.raises(InputError, match="shape"):
        check_reviewed_mask(good, (4, 4, 5))
    with pytest.raises(InputError, match="only 0"):
        check_reviewed_mask(good * 2, (4, 4, 4))
    with pytest.raises(InputError, match="no voxel"):
        check_reviewed_mask(np.zeros((4, 4, 4), np.uint8), (4, 4, 4))
