"""Cyclical LR schedule of the checkpoint-ensemble paper: values at cycle boundaries and checkpoint positions."""

import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.schedules import CyclicalSchedule


def test_values_at_cycle_boundaries():
    s = CyclicalSchedule(iterations=100, cycles=4, lr=0.01, gamma=0.5, power=0.9)
    assert [s.cycle_bounds(k) for k in range(4)] == [(0, 25), (25, 50), (50, 75), (75, 100)]
    constant = 0.01 * 0.5**0.9
    for start in (0, 25, 50, 75):
        assert s(start) == pytest.approx(0.01)  # restart at every cycle start
        assert s(start + 12) == pytest.approx(0.01 * (1 - 12 / 25) ** 0.9)  # last decaying step
        assert s(start + 13) == pytest.approx(constant)  # first constant step: ceil(0.5 * 25) = 13
        assert s(start + 24) == pytest.approx(constant)  # last step of the cycle
    assert s.constant_start(1) == 38


def test_restart_and_constant_overrides():
    s = CyclicalSchedule(
        iterations=60, cycles=3, lr=0.01, gamma=0.75, constant_lr=0.002, restart_lr=0.05, restart_steps=2
    )
    assert [s(20), s(21)] == [0.05, 0.05]
    assert s(22) == pytest.approx(0.01 * (1 - 2 / 20) ** 0.9)
    assert s(35) == 0.002 and s(39) == 0.002
    assert s(40) == 0.05


def test_checkpoints_lie_in_the_constant_tail_and_end_each_cycle():
    s = CyclicalSchedule(iterations=90, cycles=3, lr=0.01, gamma=0.6)
    steps = s.checkpoint_steps(3)
    assert len(steps) == 9 and steps == sorted(set(steps))
    for cycle in range(3):
        start, end = s.cycle_bounds(cycle)
        mine = [n for n in steps if start < n <= end]
        assert len(mine) == 3 and mine[-1] == end
        # a checkpoint after n steps has seen step n - 1, which must be a constant-LR step
        assert all(n - 1 >= s.constant_start(cycle) for n in mine)
    assert s.checkpoint_steps(2, cycles=[2]) == [84, 90]


def test_bad_settings_are_rejected():
    with pytest.raises(InputError, match="gamma"):
        CyclicalSchedule(iterations=10, cycles=1, gamma=1.0)
    with pytest.raises(InputError, match="cycles"):
        CyclicalSchedule(iterations=2, cycles=3)
    with pytest.raises(InputError, match="checkpoints_per_cycle"):
        CyclicalSchedule(iterations=10, cycles=2, gamma=0.8).checkpoint_steps(3)
