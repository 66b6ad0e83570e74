"""How many cases a fine-tuned version's calibration needs, and what its card says (core.recalibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.core.conformal import conformal_quantile
from napari_uqseg.core.recalibration import MIN_CALIBRATION_CASES, min_cases_for, recalibration_note, recalibration_text


@pytest.mark.parametrize(("level", "cases"), [(0.8, 4), (0.9, 9), (0.95, 19)])
def test_min_cases_is_where_the_conformal_interval_becomes_finite(level, cases):
    assert min_cases_for(level) == cases
    scores = np.arange(1.0, cases + 1)
    assert math.isfinite(conformal_quantile(scores, 1 - level))
    assert conformal_quantile(scores[:-1], 1 - level) == math.inf  # one case fewer: unbounded
    assert MIN_CALIBRATION_CASES == 9


def test_note_recalibrated_and_its_text():
    note = recalibration_note(["c1", "c2"], [f"v{i}" for i in range(7)], ["flips", "none"])
    assert note["status"] == "recalibrated" and note["cases"] == 9 and note["tta"] == ["flips", "none"]
    assert note["text"] == (
        "Conformal calibration refitted for this version on 2 held-back corrections + 7 validation cases "
        "(TTA: flips, none)."
    )
    assert recalibration_text(note) == note["text"] and recalibration_text(None) == ""


def test_note_too_few_says_what_is_missing():
    note = recalibration_note(["c1"], ["v1"], ["none"])
    assert note["status"] == "not calibrated" and note["tta"] == []
    assert note["text"].startswith(
        "Not calibrated: only 1 held-back correction + 1 validation case; a calibration needs at least 9."
    )
    assert "no intervals" in note["text"] and "does not carry over" in note["text"]
    off = recalibration_note(["c1"] * 5, ["v"] * 5, ["none"], enabled=False)
    assert off["status"] == "not calibrated" and "asked not to recalibrate" in off["text"]


def test_version_tag_only_for_a_fine_tune_that_could_not_recalibrate():
    from napari_uqseg.core.recalibration import version_calibration_tag

    assert version_calibration_tag({"uq_calibration": recalibration_note(["c"], [], ["none"])}) == " (not calibrated)"
    assert version_calibration_tag({"uq_calibration": recalibration_note(["c"] * 9, [], ["none"])}) == ""
    assert version_calibration_tag({}) == ""  # trained or imported versions carry no note
