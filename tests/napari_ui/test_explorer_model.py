"""The explorer's pure model (no Qt): silent-failure score, sorting with NaN, compare differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.report import CaseRow, Report
from napari_uqseg.napari_ui.explorer_model import ExplorerModel, silent_failure_scores


def _report(name, figures):
    rows = [
        CaseRow(
            case_id=c, image="", label="", dir=f"cases/{c}", files={}, dice_per_class=[d], dice=d, case_score=s, ece=e
        )
        for c, (d, s, e) in figures.items()
    ]
    return Report(Path(f"/reports/{name}"), {"model": {"method": name}}, rows)


A = _report("a", {"c1": (0.9, 0.1, 0.01), "c2": (0.3, 0.05, 0.2), "c3": (0.4, 0.9, 0.05), "c4": (np.nan, 0.2, 0.1)})


def test_silent_failure_ranks_low_dice_low_uncertainty_first():
    scores = silent_failure_scores(np.array([0.9, 0.3, 0.4, 0.2]), np.array([0.1, 0.05, 0.9, 0.5]))
    # c2: Dice 0.3 with the lowest uncertainty is the silent one; c3 is a failure that uncertainty caught
    assert np.argmax(scores) == 1
    assert scores[2] == 0.0  # the most uncertain case is never silent
    assert scores[1] == pytest.approx(0.7)
    # invariant to a monotone change of the uncertainty's units
    np.testing.assert_allclose(scores, silent_failure_scores(np.array([0.9, 0.3, 0.4, 0.2]), np.array([1, 0.5, 9, 5])))
    assert np.isnan(silent_failure_scores(np.array([np.nan, 0.5]), np.array([0.1, 0.2]))[0])


def test_sorting_puts_worst_first_and_nan_last():
    model = ExplorerModel(A)
    assert [r["case_id"] for r in model.sorted_rows("dice")] == ["c2", "c3", "c1", "c4"]
    assert [r["case_id"] for r in model.sorted_rows("dice", descending=True)] == ["c1", "c3", "c2", "c4"]
    assert [r["case_id"] for r in model.sorted_rows("case_score")] == ["c3", "c4", "c1", "c2"]
    assert [r["case_id"] for r in model.sorted_rows("ece")] == ["c2", "c4", "c3", "c1"]
    assert model.sorted_rows("silent_failure")[0]["case_id"] == "c2"
    assert model.sorted_rows("silent_failure")[-1]["case_id"] == "c4"
    with pytest.raises(InputError, match="unknown column"):
        model.sorted_rows("delta_dice")  # only with a second report


def test_compare_rows_hold_b_minus_a_on_common_cases():
    b = _report("b", {"c1": (0.8, 0.3, 0.02), "c2": (0.6, 0.2, 0.1), "c9": (0.5, 0.5, 0.5)})
    model = ExplorerModel(A, b)
    rows = {r["case_id"]: r for r in model.rows()}
    assert rows["c1"]["delta_dice"] == pytest.approx(-0.1)
    assert rows["c2"]["delta_dice"] == pytest.approx(0.3)
    assert rows["c2"]["delta_ece"] == pytest.approx(-0.1)
    assert np.isnan(rows["c3"]["delta_dice"])  # only in A
    assert [r["case_id"] for r in model.sorted_rows("delta_dice")][:2] == ["c1", "c2"]
    assert model.common_case("c1") and not model.common_case("c3")
    with pytest.raises(InputError, match="shares no case"):
        ExplorerModel(A, _report("z", {"x": (0.5, 0.5, 0.5)}))


def test_volume_lines_say_whether_the_reference_volume_is_inside_the_interval():
    from napari_uqseg.napari_ui.explorer_model import volume_lines

    detail = {
        "volumes": {
            "classes": {
                "1": {"volume": 1.5, "intervals": {"0.9": [1.2, 1.8]}},
                "2": {"volume": 2.0, "intervals": {"0.9": [1.9, 2.1]}},
            },
            "true": {"1": 1.6, "2": 2.5},
        }
    }
    lines = volume_lines(detail, {"1": "anterior", "2": "posterior"})
    assert lines == [
        "anterior: 1.50 mL (90 % interval 1.20-1.80 mL); reference 1.60 mL - inside",
        "posterior: 2.00 mL (90 % interval 1.90-2.10 mL); reference 2.50 mL - OUTSIDE",
    ]
    assert volume_lines({}, {}) == []  # reports made before volumes were recorded
