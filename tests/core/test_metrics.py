"""Dice, evaluation ROIs and proper scores against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.metrics import (
    brier,
    confusion_matrix,
    dice_per_class,
    foreground_bbox,
    mean_dice,
    nll,
    roi_mask,
)


def test_dice_per_class_hand_case():
    pred = np.array([0, 1, 1, 2, 2, 0])
    target = np.array([0, 1, 2, 2, 2, 1])
    # class 1: P={1,2}, T={1,5}, P∩T={1} -> 2*1/(2+2) = 0.5
    # class 2: P={3,4}, T={2,3,4}, P∩T={3,4} -> 2*2/(2+3) = 0.8
    np.testing.assert_allclose(dice_per_class(pred, target, 3), [0.5, 0.8])
    assert mean_dice(pred, target, 3) == pytest.approx(0.65)


def test_dice_empty_class_conventions():
    pred = np.array([[0, 1], [1, 0]])
    target = np.array([[0, 1], [2, 0]])
    # class 1: 2*1/(2+1) = 2/3; class 2 only in target -> 0; class 3 in neither -> 1.0 by convention
    np.testing.assert_allclose(dice_per_class(pred, target, 4), [2 / 3, 0.0, 1.0])
    assert mean_dice(np.zeros(5, int), np.zeros(5, int), 2) == 1.0


def test_confusion_and_label_checks():
    conf = confusion_matrix(np.array([0, 1, 1]), np.array([1, 1, 0]), 2)
    np.testing.assert_array_equal(conf, [[0, 1], [1, 1]])  # rows = target, columns = prediction
    with pytest.raises(InputError):
        dice_per_class(np.array([0, 3]), np.array([0, 1]), 3)  # label 3 out of range
    with pytest.raises(InputError):
        dice_per_class(np.array([0, 1]), np.array([0, 1, 1]), 2)  # shape mismatch
    with pytest.raises(InputError):
        dice_per_class(np.array([0.5, 1.0]), np.array([0, 1]), 2)  # non-integer labels
    with pytest.raises(InputError):
        dice_per_class(np.array([0, 1]), np.array([0, 1]), 1)


def test_foreground_bbox():
    target = np.zeros((5, 6), int)
    target[1, 2] = 1
    target[3, 4] = 2
    assert foreground_bbox(target) == (slice(1, 4), slice(2, 5))
    # margin 2: rows 1-2=-1 -> 0 and 3+1+2=6 -> clipped to 5; columns 0 and 4+1+2=7 -> 6
    assert foreground_bbox(target, margin=2) == (slice(0, 5), slice(0, 6))
    assert foreground_bbox(np.zeros((3, 3))) is None
    with pytest.raises(InputError):
        foreground_bbox(target, margin=-1)


def test_roi_mask_kinds_and_fallbacks():
    target = np.zeros((6, 6), int)
    target[1:3, 1:3] = 1
    pred = np.zeros((6, 6), int)
    pred[4, 5] = 1  # a false positive outside the GT box
    gt = roi_mask(target)
    assert gt.sum() == 4 and gt[1:3, 1:3].all()
    union = roi_mask(target, "union_bbox", pred)
    assert union.sum() == 4 * 5 and union[1:5, 1:6].all()  # rows 1..4, columns 1..5
    assert roi_mask(target, "whole").all()
    assert roi_mask(target, margin=1).sum() == 16  # rows 0..3, columns 0..3
    # empty GT: predicted-foreground box, then the whole volume
    empty = np.zeros((6, 6), int)
    fallback = roi_mask(empty, "gt_bbox", pred)
    assert fallback.sum() == 1 and fallback[4, 5]
    assert roi_mask(empty, "gt_bbox").all()
    assert roi_mask(empty, "gt_bbox", np.zeros((6, 6), int)).all()
    with pytest.raises(InputError):
        roi_mask(target, "union_bbox")
    with pytest.raises(InputError):
        roi_mask(target, "sphere")
    with pytest.raises(InputError):
        roi_mask(target, "gt_bbox", np.zeros((5, 5), int))


def test_brier_hand_case():
    prob = np.array([[0.7, 0.2], [0.2, 0.5], [0.1, 0.3]])  # (C=3, N=2)
    labels = np.array([0, 1])
    # voxel 0: 0.3² + 0.2² + 0.1² = 0.14; voxel 1: 0.2² + 0.5² + 0.3² = 0.38 -> mean 0.26
    assert brier(prob, labels) == pytest.approx(0.26)
    onehot = np.eye(3)[:, [0, 2]]
    assert brier(onehot, np.array([0, 2])) == pytest.approx(0.0)
    assert brier(onehot, np.array([1, 0])) == pytest.approx(2.0)  # confidently wrong: maximum 2
    assert math.isnan(brier(np.zeros((2, 0)), np.zeros(0, int)))


def test_nll_hand_case_and_clamp():
    prob = np.array([[0.7, 0.2], [0.2, 0.5], [0.1, 0.3]])
    # -(ln 0.7 + ln 0.5)/2 = (0.356675 + 0.693147)/2
    assert nll(prob, np.array([0, 1])) == pytest.approx((0.35667494 + 0.69314718) / 2)
    assert nll(np.array([[1.0], [0.0]]), np.array([1])) == pytest.approx(-math.log(1e-12))
    # (C, *S) shapes are accepted too
    assert nll(np.full((2, 2, 2), 0.5), np.zeros((2, 2), int)) == pytest.approx(math.log(2))
    with pytest.raises(InputError):
        nll(prob, np.array([0, 1, 1]))
