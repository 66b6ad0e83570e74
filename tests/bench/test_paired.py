"""Side-by-side ratios: the median of the pairs' ratios."""

import pytest

from napari_uqseg.bench.paired import paired_ratio


def test_a_load_spike_in_one_pair_does_not_move_the_ratio():
    remote, local = [4.2, 40.0, 4.4], [3.8, 4.0, 4.0]  # the 2nd remote call ran under a spike
    assert paired_ratio(remote, local) == pytest.approx(4.2 / 3.8)  # pairs 1.105, 10, 1.1
    assert paired_ratio([2.0], [4.0]) == 0.5


def test_unpaired_timings_are_refused():
    with pytest.raises(ValueError, match="pairs"):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="pairs"):
        paired_ratio([], [])
