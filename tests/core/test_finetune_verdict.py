"""The held-back split of corrections and the promote / don't recommendation (pure logic)."""

from __future__ import annotations

import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.finetune_verdict import is_held_back, recommend, split_held_back

IDS = [f"corr{i:02d}" for i in range(40)]


def test_held_back_share_is_fixed_per_id_and_near_the_fraction():
    train, held = split_held_back(IDS, 0.2)
    assert sorted(train + held) == sorted(IDS) and not set(train) & set(held)
    assert 3 <= len(held) <= 14  # 40 ids at 20 %: the hash gives about 8
    # a correction's side never changes as more corrections arrive or their order changes
    _, held_more = split_held_back(list(reversed(IDS)) + ["new1", "new2", "new3"], 0.2)
    assert set(held) <= set(held_more) and all(is_held_back(i, 0.2) for i in held)
    assert split_held_back(IDS, 0.0) == (IDS, [])
    with pytest.raises(InputError):
        split_held_back(IDS, 1.0)


def test_something_is_always_trained_on():
    held_alone = next(i for i in IDS if is_held_back(i, 0.2))
    assert split_held_back([held_alone], 0.2) == ([held_alone], [])
    everything = [i for i in IDS if is_held_back(i, 0.2)]
    train, held = split_held_back(everything, 0.2)
    assert len(train) == 1 and len(held) == len(everything) - 1


def _figures(before, after):
    return {"before": {"mean_dice": before}, "after": {"mean_dice": after}}


@pytest.mark.parametrize(
    ("held", "regression", "promote", "words"),
    [
        (_figures(0.80, 0.84), _figures(0.86, 0.858), True, "promote: held-back Dice +0.0400"),
        (_figures(0.80, 0.84), _figures(0.86, 0.85), False, "validation Dice fell -0.0100"),
        (_figures(0.80, 0.79), _figures(0.86, 0.87), False, "held-back Dice did not rise"),
        (_figures(0.80, 0.80), _figures(0.86, 0.86), False, "did not rise"),
        ({}, _figures(0.86, 0.87), False, "no held-back corrections"),
        (_figures(0.80, 0.84), {"before": {}, "after": {}}, False, "validation cases could not be checked"),
    ],
)
def test_recommendation(held, regression, promote, words):
    verdict = recommend(held, regression, max_regression=0.005)
    assert verdict["promote"] is promote and words in verdict["reason"]
    if held and regression.get("after"):
        assert verdict["held_back_gain"] == pytest.approx(held["after"]["mean_dice"] - held["before"]["mean_dice"])


def test_recommendation_drop_exactly_at_the_limit_promotes():
    assert recommend(_figures(0.5, 0.6), _figures(0.8, 0.795), max_regression=0.005)["promote"] is True
    assert recommend(_figures(0.5, 0.6), _figures(0.8, 0.7949), max_regression=0.005)["promote"] is False
