"""Reliability bins and top-label ECE against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.core.calibration import expected_calibration_error, reliability_bins, top_label
from napari_uqseg.core.errors import InputError


def test_top_label():
    prob = np.array([[0.9, 0.4, 0.5], [0.1, 0.6, 0.5]])
    conf, correct = top_label(prob, np.array([0, 0, 1]))
    np.testing.assert_allclose(conf, [0.9, 0.6, 0.5])
    np.testing.assert_array_equal(correct, [True, False, False])  # the 0.5/0.5 tie goes to class 0
    with pytest.raises(InputError):
        top_label(prob, np.array([0, 1]))


def test_bins_are_right_closed():
    conf = np.array([0.3, 0.35, 0.0, 1.0, 0.95])
    bins = reliability_bins(conf, np.ones(5, bool), n_bins=10)
    # 0.3 -> (0.2, 0.3] = bin 2; 0.35 -> bin 3; 0 -> first bin; 1.0 and 0.95 -> (0.9, 1] = bin 9
    np.testing.assert_array_equal(bins["counts"], [1, 0, 1, 1, 0, 0, 0, 0, 0, 2])
    assert bins["bin_edges"].shape == (11,)
    assert bins["mean_confidence"][9] == pytest.approx(0.975)
    assert math.isnan(bins["accuracy"][1])  # empty bin


def test_ece_hand_case():
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
    correct = np.array([True, True, True, False, True, False])
    # bin (0.8, 0.9]: 4 voxels, acc 0.75, conf 0.9 -> |gap| 0.15, weight 4/6
    # bin (0.5, 0.6]: 2 voxels, acc 0.5, conf 0.6 -> |gap| 0.1, weight 2/6
    # ECE = 0.1 + 0.0333... = 0.1333...
    assert expected_calibration_error(conf, correct, n_bins=10) == pytest.approx(0.4 / 3)
    # 100 bins: same two groups, same answer
    assert expected_calibration_error(conf, correct) == pytest.approx(0.4 / 3)


def test_ece_perfect_and_edge_cases():
    assert expected_calibration_error(np.ones(4), np.ones(4, bool)) == 0.0
    # 0.995 and 0.999 share the last bin (0.99, 1]: conf 0.997, acc 0.5 -> 0.497
    assert expected_calibration_error(np.array([0.995, 0.999]), np.array([True, False])) == pytest.approx(0.497)
    assert math.isnan(expected_calibration_error(np.zeros(0), np.zeros(0, bool)))
    with pytest.raises(InputError):
        expected_calibration_error(np.array([1.2]), np.array([True]))
    with pytest.raises(InputError):
        expected_calibration_error(np.array([0.5, 0.6]), np.array([True]))
    with pytest.raises(InputError):
        reliability_bins(np.array([0.5]), np.array([True]), n_bins=0)
