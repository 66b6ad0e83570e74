"""The study worklist: rows from a prediction's review, flags against the study, sorting, CSV and JSON."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review import build_review
from napari_uqseg.core.worklist import (
    FLAG_FAILURE,
    FLAG_UNLIKE,
    WorklistRow,
    case_row,
    csv_text,
    read_worklist,
    robust_z,
    sort_rows,
    study_flags,
    voxel_ml,
    write_worklist,
)

LABELS = {"0": "background", "1": "anterior", "2": "posterior"}


def row(case: str, score: float, background: float = 0.1, volume: float = 1.0) -> WorklistRow:
    return WorklistRow(case, score, "r", {"anterior": volume}, [], background, f"/x/{case}.nii.gz", case)


def test_case_row_takes_the_score_from_the_review_and_measures_volumes_in_ml():
    affine = np.diag([2.0, 1.0, 0.5, 1.0])  # 1 mm^3 per voxel
    mask = np.zeros((10, 10, 10), np.uint8)
    mask[2:5, 2:5, 2:5] = 1  # 27 voxels
    mask[6:8, 6:8, 6:8] = 2  # 8 voxels
    u = np.full(mask.shape, 0.05)
    u[2:4, 2:4, 2:4] = 0.9
    ranking = build_review(u, mask, map_name="entropy")
    r = case_row("c1", "/img.nii.gz", "c1", ranking, mask, u, affine, LABELS, ["entropy"])
    assert r.score == ranking.case_score  # read, never recomputed
    assert r.volumes_ml == pytest.approx({"anterior": 0.027, "posterior": 0.008})
    assert r.top_regions[0]["id"] == 1 and r.top_regions[0]["voxels"] == ranking.regions[0].voxels
    assert r.background_uncertainty == pytest.approx(0.05)
    assert "mean entropy" in r.reason and f"{ranking.case_score:.3f}" in r.reason
    assert voxel_ml(affine) == pytest.approx(0.001)


def test_flags_mark_study_outliers_and_empty_predictions():
    rows = [row(f"c{i}", 0.30 + 0.01 * (i % 3), background=0.10 + 0.001 * i) for i in range(10)]
    rows.append(row("fail", 0.9))  # case score far above the study
    rows.append(row("odd", 0.31, background=0.5))  # uncertainty raised outside the structure
    rows.append(row("empty", 0.30, volume=0.0))  # nothing found
    by_case = {r.case: r for r in study_flags(rows)}
    assert by_case["fail"].flags == [FLAG_FAILURE]
    assert by_case["odd"].flags == [FLAG_UNLIKE]
    assert by_case["empty"].flags == [FLAG_FAILURE]
    assert all(not by_case[f"c{i}"].flags for i in range(10))


def test_a_small_study_gets_only_the_empty_prediction_flag():
    rows = study_flags([row("a", 0.1), row("b", 5.0), row("c", 0.1, volume=0.0)])
    assert [r.flags for r in rows] == [[], [], [FLAG_FAILURE]]


def test_robust_z_ignores_nan_and_handles_zero_spread():
    z = robust_z(np.array([1.0, 1.0, 1.0, float("nan")]))
    assert z[:3].tolist() == [0.0, 0.0, 0.0] and math.isnan(z[3])


def test_rows_sort_most_uncertain_first_and_unscored_last():
    rows = sort_rows([row("b", 0.2), row("nan", float("nan")), row("a", 0.9), row("c", 0.2)])
    assert [r.case for r in rows] == ["a", "b", "c", "nan"]


def test_written_worklist_reads_back_sorted_in_json_and_csv(tmp_path):
    rows = [row("low", 0.1), row("high", 0.8), row("mid", 0.4)]
    json_path, csv_path = write_worklist(rows, tmp_path, {"model": "m"})
    back = read_worklist(tmp_path)
    assert [r.case for r in back] == ["high", "mid", "low"]
    assert back[0].to_dict() == next(r for r in rows if r.case == "high").to_dict()
    table = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert [t["case"] for t in table] == ["high", "mid", "low"]
    assert [t["rank"] for t in table] == ["1", "2", "3"]
    assert float(table[0]["volume_ml_anterior"]) == pytest.approx(1.0)
    assert csv_text([]).startswith("rank,case,score,reason")


def test_a_bad_worklist_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no worklist"):
        read_worklist(tmp_path)
    (tmp_path / "worklist.json").write_text('{"cases": [{"score": 1}]}')
    with pytest.raises(InputError, match="malformed row"):
        read_worklist(tmp_path)


def test_case_row_keeps_calibrated_volume_intervals_and_writes_them(tmp_path):
    from napari_uqseg.core.volume_intervals import describe_volumes
    from napari_uqseg.core.worklist import volume_summary

    mask = np.zeros((10, 10, 10), np.uint8)
    mask[2:5, 2:5, 2:5] = 1  # 27 voxels of 1 mm^3
    mask[6:8, 6:8, 6:8] = 2  # 8 voxels
    u = np.full(mask.shape, 0.05)
    scales = {"bernoulli": np.array([0.0, 3.0, 2.0])}
    # class 1: q = 2 at 90 % -> 27 -+ 6 voxels; class 2 has too few cases for 90 %: unbounded above
    calibration = {"source": "bernoulli", "classes": {"1": {"0.9": 2.0}, "2": {"0.9": math.inf}}}
    volumes = describe_volumes(mask, scales, 0.001, calibration)
    r = case_row("c1", "/img.nii.gz", "c1", build_review(u, mask), mask, u, np.eye(4), LABELS, volumes=volumes)
    assert r.volume_intervals_ml["anterior"]["0.9"] == pytest.approx([0.021, 0.033])
    assert r.volume_intervals_ml["posterior"]["0.9"][1] is None  # unbounded is None, not Infinity
    text = volume_summary(r.volumes_ml, r.volume_intervals_ml)
    assert text.startswith("anterior 0.03 mL (90 %: 0.02-0.03); posterior 0.01 mL (90 %: ")
    assert "unbounded (too few calibration cases)" in text
    assert volume_summary({"anterior": 1.5}) == "anterior 1.50 mL"  # uncalibrated: the volume alone

    write_worklist([r, row("c2", 0.1)], tmp_path)
    back = {x.case: x for x in read_worklist(tmp_path)}
    assert back["c1"].volume_intervals_ml == r.volume_intervals_ml and back["c2"].volume_intervals_ml == {}
    table = list(csv.DictReader(io.StringIO((tmp_path / "worklist.csv").read_text())))
    by_case = {t["case"]: t for t in table}
    assert (
        by_case["c1"]["volume_ml_anterior_90_low"] == "0.021" and by_case["c1"]["volume_ml_anterior_90_high"] == "0.033"
    )
    assert by_case["c1"]["volume_ml_posterior_90_high"] == "" and by_case["c2"]["volume_ml_anterior_90_low"] == ""
