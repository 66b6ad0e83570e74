"""``uqseg conformal`` end to end: calibration stored with the model, used by predict and evaluate, with TTA."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_uqseg.bench.tiny_models import TINY_CONFIG
from napari_uqseg.cli import main as uqseg
from napari_uqseg.core.conformal_masks import THRESHOLDS
from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.make_model import train
from napari_uqseg.engine.model_folder import load_model
from napari_uqseg.engine.uq_calibration import (
    SAMPLES_WIDTH_LIMIT,
    CaseUncertainty,
    case_uncertainty,
    fit_entry,
    labelled_cases,
    mean_interval_width,
)


@pytest.fixture(scope="module")
def calibrated_model(synthetic_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("uq")
    model = train("deterministic", synthetic_dataset, root / "m", TINY_CONFIG, device="cpu")
    cases = root / "cases.txt"
    cases.write_text("\n".join(f"synth_{i:03d}" for i in range(1, 9)) + "\n")
    argv = ["conformal", "--model", str(model), "--data", str(synthetic_dataset), "--cases", str(cases)]
    assert uqseg([*argv, "--tta", "none", "flips", "--risk", "0.3", "--device", "cpu"]) == 0
    return model


def test_calibration_is_stored_per_tta_mode(calibrated_model):
    stored = json.loads((calibrated_model / "uq_calibration.json").read_text())
    assert set(stored["entries"]) == {"none", "flips"}
    plain, flips = stored["entries"]["none"], stored["entries"]["flips"]
    assert plain["volume_source"] == "bernoulli" and flips["volume_source"] == "samples"
    assert len(plain["cases"]) == 8 and plain["masks"]["risk"] == 0.3
    for c in ("1", "2"):
        masks = flips["masks"]["classes"][c]
        assert 0 < masks["outer"] <= masks["inner"] <= 1
        assert set(flips["volume"]["samples"][c]) == {"0.8", "0.9", "0.95"}
    assert load_model(calibrated_model).uq_calibration == stored


def test_predict_reports_calibrated_volumes_and_masks(calibrated_model, synthetic_dataset, tmp_path):
    image = synthetic_dataset / "imagesTr" / "synth_002.nii.gz"
    out = tmp_path / "pred"
    argv = ["predict", "--model", str(calibrated_model), "--image", str(image), "--out", str(out)]
    assert uqseg([*argv, "--tta", "flips", "--device", "cpu"]) == 0
    review = json.loads((out / "review.json").read_text())
    assert review["tta"] == "flips" and review["volumes"]["calibrated"]
    for entry in review["volumes"]["classes"].values():
        lo, hi = entry["intervals"]["0.9"]
        assert lo <= entry["volume"] <= hi
    assert review["conformal_masks"]["risk"] == 0.3 and "30 %" in review["conformal_masks"]["text"]
    assert {"mutual_information", "class_std"} <= {p.name.split(".")[0] for p in out.iterdir()}


def test_evaluate_with_tta_writes_volumes_per_case(calibrated_model, synthetic_dataset, tmp_path):
    report = tmp_path / "report"
    argv = ["evaluate", "--model", str(calibrated_model), "--data", str(synthetic_dataset), "--report", str(report)]
    assert uqseg([*argv, "--tta", "flips", "--map", "mutual_information", "--device", "cpu"]) == 0
    data = json.loads((report / "report.json").read_text())
    assert "--tta flips" in data["command"] and data["settings"]["tta"] == "flips"
    case = json.loads((report / "cases" / "synth_001" / "case.json").read_text())
    assert set(case["volumes"]["true"]) == {"1", "2"} and "0.9" in case["volumes"]["classes"]["1"]["intervals"]


def test_case_records_and_too_few_cases(calibrated_model, synthetic_dataset):
    method = load_model(calibrated_model)
    ((case_id, image, label),) = labelled_cases(synthetic_dataset, ["synth_003"])
    record = case_uncertainty(method, case_id, image, label)
    assert record.true_voxels.tolist() == np.bincount(label.ravel(), minlength=3).tolist()
    assert record.outer_miss.shape == record.size.shape and record.outer_miss[1, -1] <= 1
    assert np.all(np.diff(record.outer_miss[1]) >= 0)  # misses grow with the threshold
    with pytest.raises(InputError, match="at least 2"):
        fit_entry([record])
    with pytest.raises(InputError, match="no case"):
        labelled_cases(synthetic_dataset, ["nope"])


def _record(case: int, error: float, scales: dict[str, float]) -> CaseUncertainty:
    """A calibration case whose predicted volumes are off by ``error`` voxels, with the given scales."""
    flat = np.zeros((3, len(THRESHOLDS)))
    return CaseUncertainty(
        case_id=f"c{case}",
        true_voxels=np.array([10_000, 1_000, 1_000]),
        predicted_voxels=np.array([10_000, 1_000 + error, 1_000 - error]).astype(np.int64),
        scales={name: np.full(3, value) for name, value in scales.items()},
        outer_miss=flat,
        inner_excess=flat,
        size=np.ones((3, len(THRESHOLDS))),
        voxel_ml=0.001,
    )


def test_the_samples_scale_is_kept_unless_its_intervals_are_far_wider():
    rng = np.random.default_rng(0)
    errors = rng.uniform(5, 100, size=40).round()
    # the samples' scale follows each case's error: kept
    tracking = [_record(i, e, {"samples": e, "bernoulli": 0.8 * e * rng.uniform(0.5, 2)}) for i, e in enumerate(errors)]
    assert fit_entry(tracking)["volume_source"] == "samples"
    # samples that hardly disagree: a scale of noise around 2 voxels, whose intervals are far wider
    degenerate = [_record(i, e, {"bernoulli": e, "samples": rng.uniform(1, 3)}) for i, e in enumerate(errors)]
    entry = fit_entry(degenerate)
    widths = {s: mean_interval_width(entry["volume"][s], degenerate, s, 0.9) for s in ("samples", "bernoulli")}
    assert widths["samples"] > SAMPLES_WIDTH_LIMIT * widths["bernoulli"]
    assert entry["volume_source"] == "bernoulli"
