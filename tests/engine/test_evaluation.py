"""`uqseg evaluate`: the report folder, its figures recomputed from its own files, shifts, atomicity, bad input."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.cli import main
from napari_uqseg.core.calibration import expected_calibration_error, top_label
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.metrics import dice_per_class, roi_mask
from napari_uqseg.core.report import FALSE_NEGATIVE, FALSE_POSITIVE, read_report
from napari_uqseg.engine import evaluation


@pytest.fixture(scope="module")
def model(tmp_path_factory, synthetic_dataset):
    from napari_uqseg.bench.tiny_models import TINY_CONFIG
    from napari_uqseg.engine.make_model import train

    return train(
        "deterministic", synthetic_dataset, tmp_path_factory.mktemp("eval") / "model", dict(TINY_CONFIG), device="cpu"
    )


@pytest.fixture(scope="module")
def report_dir(model, synthetic_dataset, tmp_path_factory):
    cases = tmp_path_factory.mktemp("lists") / "test.txt"
    cases.write_text("synth_002\nsynth_005  # a comment\nsynth_007\nsynth_008\n")
    out = tmp_path_factory.mktemp("reports") / "report"
    argv = ["evaluate", "--model", str(model), "--data", str(synthetic_dataset), "--cases", str(cases)]
    assert main([*argv, "--report", str(out), "--keep-probabilities", "--device", "cpu"]) == 0
    return out


def test_report_folder_has_every_file(report_dir, capsys):
    names = {p.name for p in report_dir.iterdir()}
    assert names == {
        "report.json",
        "table.txt",
        "reliability.png",
        "risk_coverage.png",
        "dice_after_removal.png",
        "cases",
    }
    for png in ("reliability.png", "risk_coverage.png", "dice_after_removal.png"):
        assert (report_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    case_dir = report_dir / "cases" / "synth_005"
    assert {p.name for p in case_dir.iterdir()} == {
        "prediction.nii.gz",
        "error.nii.gz",
        "entropy.nii.gz",
        "probabilities.nii.gz",
        "case.json",
    }
    assert not list(report_dir.parent.glob(".report*"))  # no staging folder left behind
    data = json.loads((report_dir / "report.json").read_text())  # strict JSON: NaN stored as null
    assert data["command"].startswith("uqseg evaluate --model ")
    assert data["dataset"]["case_ids"] == ["synth_002", "synth_005", "synth_007", "synth_008"]
    assert data["model"]["method"] == "deterministic" and data["map"] == "entropy"
    assert set(data["dataset"]["overlap_with_training"]) == set(data["dataset"]["case_ids"])  # trained on all 8
    table = (report_dir / "table.txt").read_text()
    assert "synth_007" in table and "auroc_pooled" in table


def test_figures_match_a_recomputation_from_the_saved_files(report_dir):
    report = read_report(report_dir)
    assert [r.case_id for r in report.cases] == ["synth_002", "synth_005", "synth_007", "synth_008"]
    confidences, corrects = [], []
    for row in report.cases:
        volumes = report.load_case(row.case_id)
        pred, gt, err = volumes["prediction"].array, volumes["label"].array, volumes["error"].array
        np.testing.assert_allclose(volumes["prediction"].affine, nib.load(row.image).affine)
        assert pred.shape == gt.shape == err.shape == (24, 24, 24)
        np.testing.assert_allclose(row.dice_per_class, dice_per_class(pred, gt, 3))
        assert row.dice == pytest.approx(np.mean(row.dice_per_class))
        np.testing.assert_array_equal(err == FALSE_POSITIVE, (pred != gt) & (pred != 0))
        np.testing.assert_array_equal(err == FALSE_NEGATIVE, (pred != gt) & (pred == 0))
        prob = np.moveaxis(nib.load(report.case_file(row.case_id, "probabilities")).get_fdata(dtype=np.float32), -1, 0)
        np.testing.assert_array_equal(np.argmax(prob, 0), pred)
        roi = roi_mask(gt, "gt_bbox")
        conf, correct = top_label(prob[:, roi], gt[roi])
        assert row.ece == pytest.approx(expected_calibration_error(conf, correct, 100), abs=1e-5)
        assert row.error_rate == pytest.approx(1 - correct.mean())
        confidences.append(conf)
        corrects.append(correct)
        detail = report.case_detail(row.case_id)
        assert sum(detail["reliability"]["counts"]) == roi.sum()
        assert detail["worst_region"]["voxels"] <= (err > 0).sum()
    agg = report.meta["aggregate"]
    assert agg["dice_mean"] == pytest.approx(np.mean([r.dice for r in report.cases]))
    assert agg["ece_mean"] == pytest.approx(np.mean([r.ece for r in report.cases]))
    pooled = expected_calibration_error(np.concatenate(confidences), np.concatenate(corrects), 100)
    assert agg["ece_pooled"] == pytest.approx(pooled, abs=1e-5)
    for key in ("auroc_pooled", "aupr_pooled", "aurc_pooled", "e_aurc_pooled", "case_spearman", "review_recall_mean"):
        assert key in agg
    assert 0.0 <= agg["auroc_pooled"] <= 1.0
    assert set(report.meta["by_map"]) == {"entropy"}
    assert report.meta["by_map"]["entropy"]["auroc"] == pytest.approx(agg["auroc_pooled"])
    curve = report.meta["curves"]["dice_after_removal"]
    assert len(curve["dice"]) == len(curve["oracle"]) == 20
    assert curve["oracle"][-1] >= curve["dice"][0]  # removing errors first can only help


def test_shift_is_applied_recorded_and_reproducible(model, synthetic_dataset, tmp_path):
    outs = []
    for name in ("a", "b"):
        out = evaluation.evaluate(
            model, synthetic_dataset, tmp_path / name, ["synth_001"], ("noise", 4), device="cpu", command="test"
        )
        outs.append(read_report(out))
    first, second = outs
    row = first.case("synth_001")
    shifted = first.case_file("synth_001", "image")
    assert shifted.parent == first.path / "cases" / "synth_001"
    source = nib.load(row.image).get_fdata()
    image = first.load_case("synth_001")["image"].array
    assert np.abs(image - source).mean() > 10
    np.testing.assert_array_equal(image, second.load_case("synth_001")["image"].array)
    assert first.meta["dataset"]["shift"]["name"] == "noise" and first.meta["dataset"]["shift"]["severity"] == 4
    assert row.dice == second.case("synth_001").dice


def test_validation_cases_are_the_cards_split(model, synthetic_dataset, tmp_path, capsys):
    from napari_uqseg.engine.model_folder import read_card

    val_cases = read_card(model).training["data"]["val_cases"]
    base = ["evaluate", "--model", str(model), "--data", str(synthetic_dataset), "--device", "cpu"]
    assert main([*base, "--report", str(tmp_path / "val"), "--validation-cases"]) == 0
    dataset = read_report(tmp_path / "val").meta["dataset"]
    assert dataset["case_ids"] == val_cases
    assert dataset["overlap_with_training"] == sorted(val_cases)  # the report says they were chosen on
    assert "--validation-cases" in read_report(tmp_path / "val").meta["command"]
    with pytest.raises(SystemExit):  # one source of cases at a time
        main([*base, "--report", str(tmp_path / "both"), "--validation-cases", "--cases", "x.txt"])
    assert "not allowed with" in capsys.readouterr().err


def test_bad_input_and_failures_leave_no_report(model, synthetic_dataset, tmp_path, monkeypatch, capsys):
    base = ["evaluate", "--model", str(model), "--data", str(synthetic_dataset), "--device", "cpu"]
    assert main([*base, "--report", str(tmp_path / "r.json")]) == 2
    assert "folder" in capsys.readouterr().err
    assert main([*base, "--report", str(tmp_path / "r"), "--shift", "fog:2"]) == 2
    assert main([*base, "--report", str(tmp_path / "r"), "--map", "mutual_information"]) == 2
    assert "not a map of deterministic" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(InputError, match="--overwrite"):
        evaluation.evaluate(model, synthetic_dataset, tmp_path / "full", device="cpu")
    with pytest.raises(InputError, match="synth_999"):
        evaluation.evaluate(model, synthetic_dataset, tmp_path / "r", ["synth_999"], device="cpu")

    calls = []
    real = evaluation.predict_volume

    def flaky(method, volume, **options):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(method, volume, **options)

    monkeypatch.setattr(evaluation, "predict_volume", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        evaluation.evaluate(model, synthetic_dataset, tmp_path / "full", device="cpu", overwrite=True)
    assert (tmp_path / "full" / "x").read_text() == "keep"  # the old folder is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no staging folder, no half report
