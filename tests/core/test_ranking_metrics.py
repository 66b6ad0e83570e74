"""Error-detection and selective-prediction metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.ranking_metrics import (
    aurc,
    auroc,
    average_precision,
    dice_after_removal,
    e_aurc,
    optimal_aurc,
    risk_coverage,
    spearman,
    ueo,
)

SCORES = np.array([1.0, 2.0, 2.0, 3.0])
POS = np.array([False, True, False, True])


def test_auroc_hand_case_with_tie():
    # average ranks 1, 2.5, 2.5, 4; positives' rank sum 6.5 -> (6.5 - 2*3/2) / (2*2) = 0.875
    assert auroc(SCORES, POS) == pytest.approx(0.875)
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert auroc(np.ones(6), [0, 1, 0, 1, 1, 0]) == 0.5  # all tied: chance
    assert math.isnan(auroc([0.1, 0.2], [0, 0]))
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))
    with pytest.raises(InputError):
        auroc([0.1, np.nan], [0, 1])


def test_average_precision_hand_case_with_tie():
    # threshold 3: TP 1 of 1 kept -> P 1, R 0.5; threshold 2: TP 2 of 3 kept -> P 2/3, R 1
    # AP = 0.5*1 + 0.5*2/3 = 0.8333
    assert average_precision(SCORES, POS) == pytest.approx(5 / 6)
    assert average_precision([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert average_precision(np.ones(4), [0, 1, 0, 0]) == pytest.approx(0.25)  # one tie group: base rate
    # scores 0.9, 0.8, 0.1 with positives at 0.9 and 0.1: 0.5*1 + 0.5*(2/3)
    assert average_precision([0.9, 0.8, 0.1], [1, 0, 1]) == pytest.approx(5 / 6)
    assert math.isnan(average_precision([0.1, 0.2], [0, 0]))


def test_risk_coverage_and_aurc_hand_case():
    u = np.array([0.1, 0.2, 0.2, 0.3])
    err = np.array([False, True, False, True])
    coverage, risk = risk_coverage(u, err)
    # groups end at k = 1 (0 errors), k = 3 (1 error), k = 4 (2 errors)
    np.testing.assert_allclose(coverage, [0.25, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0.0, 1 / 3, 0.5])
    # step integral: 0.25*0 + 0.5*(1/3) + 0.25*0.5 = 0.291666
    assert aurc(u, err) == pytest.approx(7 / 24)
    # optimal, N=4, N_e=2: (1/4) * ((3-2)/3 + (4-2)/4) = 5/24
    assert optimal_aurc(4, 2) == pytest.approx(5 / 24)
    assert e_aurc(u, err) == pytest.approx(2 / 24)


def test_aurc_without_ties_and_edge_cases():
    u = np.array([0.4, 0.1, 0.3, 0.2])
    err = np.array([True, False, False, True])
    # order 0.1 (ok), 0.2 (err), 0.3 (ok), 0.4 (err): risks 0, 1/2, 1/3, 1/2 -> mean 1.3333/4
    assert aurc(u, err) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    assert e_aurc(np.array([0.1, 0.2, 0.9]), np.array([False, False, True])) == pytest.approx(0.0)  # perfect
    assert aurc(np.ones(3), np.ones(3, bool)) == 1.0
    assert e_aurc(np.ones(3), np.ones(3, bool)) == 0.0
    assert optimal_aurc(5, 0) == 0.0
    assert math.isnan(aurc(np.zeros(0), np.zeros(0, bool)))
    cov, risk = risk_coverage(np.zeros(0), np.zeros(0, bool))
    assert cov.size == 0 and risk.size == 0


def test_ueo_hand_case():
    u = np.array([0.9, 0.6, 0.15, 0.0])
    err = np.array([True, False, True, False])
    best, values = ueo(u, err, thresholds=(0.1, 0.5, 0.95))
    # τ=0.1: U={0,1,2}, U∩E={0,2} -> 4/(3+2) = 0.8; τ=0.5: U={0,1} -> 2/(2+2) = 0.5; τ=0.95: U={} -> 0/(0+2)
    np.testing.assert_allclose(values, [0.8, 0.5, 0.0])
    assert best == pytest.approx(0.8)
    best, values = ueo(np.zeros(3), np.zeros(3, bool))
    assert best == 1.0 and values.shape == (11,) and np.all(values == 1.0)  # both empty -> 1
    with pytest.raises(InputError):
        ueo(u, err, thresholds=())


def test_dice_after_removal_hand_case():
    u = np.array([0.1, 0.9, 0.5, 0.2])
    pred = np.array([1, 1, 0, 1])
    target = np.array([1, 0, 0, 1])
    # x=0: P={0,1,3}, T={0,3} -> 2*2/(3+2) = 0.8; x=0.25 keeps 3 least uncertain {0,3,2}: P=T={0,3} -> 1
    out = dice_after_removal(u, pred, target, 2, fractions=[0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(out, [0.8, 1.0, 1.0, 1.0])
    assert dice_after_removal(u, pred, target, 2).shape == (20,)  # 0, 0.05, ..., 0.95


def test_dice_after_removal_ties_and_absent_classes():
    u = np.zeros(4)
    pred = np.array([1, 0, 0, 0])
    target = np.array([0, 0, 0, 1])
    # all tied: lower indices kept -> keep {0,1}: class 1 P={0}, T={} -> Dice 0; class 2 absent
    assert dice_after_removal(u, pred, target, 3, fractions=[0.5])[0] == 0.0
    assert dice_after_removal(u, pred, target, 3, fractions=[0.5], skip_absent=False)[0] == 0.5
    # keep {0}... with nothing present at all the value is 1.0
    assert dice_after_removal(u, np.zeros(4, int), np.zeros(4, int), 2, fractions=[0.5])[0] == 1.0


def test_dice_after_removal_keeps_exact_count():
    n = 100
    u = np.arange(n, dtype=float)
    target = np.ones(n, int)
    pred = np.ones(n, int)
    pred[5] = 0  # the 6th least uncertain voxel is missed
    # x = 0.95 in floats gives (1-x)*100 = 5.000000000000004; exactly 5 voxels must stay -> Dice 1
    # (keeping 6 would give 2*5/(5+6) = 0.909)
    out = dice_after_removal(u, pred, target, 2, fractions=np.arange(0, 1, 0.05))
    assert out[-1] == 1.0
    assert out[0] == pytest.approx(2 * 99 / (99 + 100))
    with pytest.raises(InputError):
        dice_after_removal(u, pred, target, 2, fractions=[1.0])
    with pytest.raises(InputError):
        dice_after_removal(u[:5], pred, target, 2)


def test_spearman():
    # ranks x 1,2,3,4 vs y 1,3,2,4: d² = 0+1+1+0 = 2 -> 1 - 6*2/(4*15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3, 4, np.nan], [1, 3, 2, 4, 7]) == pytest.approx(0.8)  # NaN pair dropped
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1.0], [2.0]))
