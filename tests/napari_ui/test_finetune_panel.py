"""The fine-tune panel shows held-back and regression figures and the promote / don't recommendation."""

from __future__ import annotations

import pytest

from napari_uqseg.core.finetune_verdict import recommend
from napari_uqseg.core.records import JobStatus
from napari_uqseg.napari_ui.jobs_panel import before_after_png, metric_rows

pytestmark = pytest.mark.gui


def _result(val_after: float) -> dict:
    held = {"before": {"dice": {"c7": 0.70, "c9": 0.74}, "mean_dice": 0.72}}
    held["after"] = {"dice": {"c7": 0.78, "c9": 0.80}, "mean_dice": 0.79}
    regression = {"before": {"dice": {"v1": 0.86, "v2": 0.88}, "mean_dice": 0.87}}
    regression["after"] = {"dice": {"v1": val_after, "v2": val_after}, "mean_dice": val_after}
    return {
        "model": "tiny_det",
        "version": "v3",
        **held,
        "regression": regression,
        "recommendation": recommend(held, regression),
        "held_back": ["c7", "c9"],
        "finetuned_on": ["c1", "c2", "c3"],
    }


def test_panel_shows_held_back_and_regression_figures(driver):
    _, widget = driver.open(sample=False)
    result = _result(0.869)
    widget.jobs._job_ended(
        (JobStatus("j1", "finetune", "succeeded", 1.0, "done", result=result), before_after_png(result))
    )
    table = widget.jobs.metrics
    rows = [tuple(table.item(r, c).text() for c in range(3)) for r in range(table.rowCount())]
    assert rows[0] == ("held-back mean Dice (2)", "0.720", "0.790")
    assert rows[1] == ("validation mean Dice (2)", "0.870", "0.869")
    assert ("Dice c7 (held back)", "0.700", "0.780") in rows
    assert not table.isHidden() and widget.jobs.figures.count() == 1
    label = widget.jobs.recommendation
    assert not label.isHidden() and label.text().startswith("Recommendation: promote: held-back Dice +0.0700")


def test_panel_says_do_not_promote_when_validation_falls(driver):
    _, widget = driver.open(sample=False)
    result = _result(0.85)
    widget.jobs._job_ended((JobStatus("j2", "finetune", "succeeded", 1.0, "done", result=result), None))
    assert "don't promote: validation Dice fell -0.0200" in widget.jobs.recommendation.text()
    assert metric_rows(result)[1][2] == "0.850"
    widget.jobs._clear_result()
    assert widget.jobs.recommendation.isHidden() and widget.jobs.metrics.rowCount() == 0


def test_panel_says_whether_the_new_version_was_recalibrated(driver):
    from napari_uqseg.core.recalibration import recalibration_note

    _, widget = driver.open(sample=False)
    result = {**_result(0.869), "uq_calibration": recalibration_note(["c7", "c9"], ["v1", "v2"], ["none"])}
    widget.jobs._job_ended((JobStatus("j3", "finetune", "succeeded", 1.0, "done", result=result), None))
    lines = widget.jobs.recommendation.text().split("\n")
    assert lines[0].startswith("Recommendation: promote") and len(lines) == 2
    assert lines[1].startswith("Not calibrated: only 2 held-back corrections + 2 validation cases; a calibration needs")
    result["uq_calibration"] = recalibration_note(["c7", "c9"], [f"v{i}" for i in range(8)], ["none"])
    widget.jobs._job_ended((JobStatus("j4", "finetune", "succeeded", 1.0, "done", result=result), None))
    assert widget.jobs.recommendation.text().endswith("on 2 held-back corrections + 8 validation cases (TTA: none).")


def test_panel_says_what_partial_corrections_were_trained_on(driver):
    _, widget = driver.open(sample=False)
    result = {**_result(0.869), "loss_mask": {"mode": "confident", "partial": ["c7"]}}
    widget.jobs._job_ended((JobStatus("j5", "finetune", "succeeded", 1.0, "done", result=result), None))
    assert widget.jobs.recommendation.text().split("\n")[1] == (
        "1 partial correction trained on the regions marked done plus the voxels the model was sure of."
    )
