"""The Slicer job status line of a finished fine-tune: held-back and validation Dice, and the recommendation."""

from __future__ import annotations

from UQSegLib.logic import finetune_report
from UQSegLib.review_table import review_rows

from napari_uqseg.core.finetune_verdict import recommend
from napari_uqseg.core.review_ranking import Region, ReviewRanking
from napari_uqseg.core.volume import Volume


def test_finetune_report_line():
    held = {"before": {"dice": {"c7": 0.7}, "mean_dice": 0.7}, "after": {"dice": {"c7": 0.76}, "mean_dice": 0.76}}
    regression = {"before": {"dice": {"v": 0.88}, "mean_dice": 0.88}, "after": {"dice": {"v": 0.86}, "mean_dice": 0.86}}
    line = finetune_report({**held, "regression": regression, "recommendation": recommend(held, regression)})
    assert line == (
        "held-back Dice (1) 0.700 -> 0.760; validation Dice (1) 0.880 -> 0.860; "
        "don't promote: validation Dice fell -0.0200 (limit -0.005)"
    )
    assert finetune_report({}) == ""
    partial = {"mode": "confident", "partial": ["a1", "b2"]}
    assert finetune_report({"loss_mask": partial}) == (
        "2 partial corrections trained on the regions marked done plus the voxels the model was sure of."
    )
    assert finetune_report({"loss_mask": {"mode": "all", "partial": []}}) == ""


def test_review_rows_carry_the_probably_wrong_voxels():
    import numpy as np

    region = Region(1, 0.4, 0.9, 20, (1.0, 1.0, 1.0), ((0, 3), (0, 3), (0, 3)), 1, 8.0, expected_errors=6.5)
    ranking = ReviewRanking("entropy", 2, 0.1, [0.0] * 4, [region], rank_by="expected_errors")
    (row,) = review_rows(ranking, Volume(np.ones((4, 4, 4), np.uint8), np.eye(4)))
    assert row.expected_errors == 6.5 and row.label == 1


def test_job_status_line():
    from UQSegLib.logic import job_status_text

    from napari_uqseg.core.records import JobStatus

    running = JobStatus("j1", "finetune", "running", 0.5, "step 5/10", eta_s=12.4)
    assert job_status_text(running) == "finetune j1: running, 12 s left step 5/10"
    held = {"before": {"dice": {"c7": 0.7}, "mean_dice": 0.7}, "after": {"dice": {"c7": 0.76}, "mean_dice": 0.76}}
    done = JobStatus("j1", "finetune", "succeeded", 1.0, "done", result=held)
    assert job_status_text(done) == "finetune j1: succeeded done held-back Dice (1) 0.700 -> 0.760"
    failed = JobStatus("j2", "train", "failed", 0.1, "", error="out of memory")
    assert job_status_text(failed) == "train j2: failed out of memory"


def test_finetune_report_says_whether_the_version_was_recalibrated():
    from napari_uqseg.core.recalibration import recalibration_note

    held = {"before": {"dice": {"c7": 0.7}, "mean_dice": 0.7}, "after": {"dice": {"c7": 0.76}, "mean_dice": 0.76}}
    few = finetune_report({**held, "uq_calibration": recalibration_note(["c7"], ["v1"], ["none", "flips"])})
    assert few.startswith("held-back Dice (1) 0.700 -> 0.760; Not calibrated: only 1 held-back correction + 1 ")
    assert "needs at least 9" in few
    enough = recalibration_note(["c7"], [f"v{i}" for i in range(9)], ["flips", "none"])
    assert finetune_report({"uq_calibration": enough}) == (
        "Conformal calibration refitted for this version on 1 held-back correction + 9 validation cases "
        "(TTA: flips, none)."
    )
