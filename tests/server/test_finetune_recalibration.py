"""A fine-tune job recalibrates the new version's volume intervals and conformal masks on cases it never trained
on (held-back corrections + the original validation cases), through a real server; with too few it says so."""

from __future__ import annotations

import json

import pytest

from napari_uqseg.client.errors import BadRequest
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.calibrated_uncertainty import CALIBRATION_FILE
from napari_uqseg.core.nifti_io import load_image, load_label
from napari_uqseg.core.recalibration import MIN_CALIBRATION_CASES
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.data import case_pairs, num_classes_of
from napari_uqseg.engine.model_folder import load_model, read_card
from napari_uqseg.engine.tta import with_tta
from napari_uqseg.engine.uq_calibration import calibration_records, fit_entry

TIMEOUT = (5, 300)
MODEL = "tiny_det"  # calibrated at risk 0.3 for TTA none and flips (bench.tiny_models.CALIBRATED)


@pytest.fixture(scope="module")
def backend(uqseg_server):
    client = RemoteBackend(uqseg_server.url, uqseg_server.token)
    yield client
    client.close()


@pytest.fixture(scope="module")
def corrections(backend):
    """Correction id -> (image, label): four synthetic cases predicted and corrected to their truth."""
    out = {}
    for k in range(4):
        image, label = synthetic_case((24, 24, 24), seed=300 + k)
        result = backend.predict(image, MODEL)
        out[backend.submit_correction(result.id, label, result.review)] = (image, label)
    return out


def _finetune(backend, options):
    job = backend.start_job("finetune", MODEL, {"options": {"iterations": 3, "checkpoint_every": 3, **options}})
    status = backend.wait_job(job.id, timeout=300)
    assert status.state == "succeeded", status.error
    return status.result


def _version_metrics(backend, version):
    model = next(m for m in backend.models() if m.name == MODEL)
    return next(v for v in model.versions if v.version == version).metrics


def test_finetune_recalibrates_the_new_version(backend, corrections, uqseg_server):
    result = _finetune(backend, {"held_back_fraction": 0.9, "min_calibration_cases": 2})
    note, version = result["uq_calibration"], result["version"]
    validation = result["regression"]["cases"]
    assert result["held_back"] and validation  # both kinds of unseen cases are there
    assert note["status"] == "recalibrated" and note["tta"] == ["flips", "none"]  # the parent's TTA modes
    assert note["held_back"] == result["held_back"] and note["validation"] == validation
    assert note["cases"] == len(result["held_back"]) + len(validation)
    assert "refitted for this version" in note["text"]
    assert _version_metrics(backend, version)["uq_calibration"] == note  # the version card keeps it
    folder = uqseg_server.data_dir / "models" / MODEL / version
    assert read_card(folder).training["uq_calibration"] == note
    stored = json.loads((folder / CALIBRATION_FILE).read_text())["entries"]
    assert set(stored) == {"none", "flips"}
    assert stored["none"]["cases"] == result["held_back"] + validation
    assert stored["flips"]["masks"]["risk"] == pytest.approx(0.3)  # the parent's risk
    # the same fit, redone here from the new weights on the same cases: the job calibrated what it says
    data = read_card(folder).training["data"]["dir"]
    val = {c: (load_image(i), p) for c, i, p in case_pairs(data) if c in validation}
    cases = [(cid, *corrections[cid]) for cid in result["held_back"]]
    cases = [(c, image, label.array) for c, image, label in cases]
    num_classes, _ = num_classes_of(data)
    cases += [(c, image, load_label(p, image, num_classes).array) for c, (image, p) in val.items()]
    method = load_model(folder)
    for key, tta in (("none", None), ("flips", "flips")):
        expected = fit_entry(calibration_records(with_tta(method, tta), cases), stored[key]["masks"]["risk"])
        assert stored[key]["masks"]["classes"] == expected["masks"]["classes"]
        for c, levels in expected["volume"][expected["volume_source"]].items():
            got = stored[key]["volume"][stored[key]["volume_source"]][c]
            assert got == pytest.approx(levels, rel=1e-5)
    # predictions with the new version carry calibrated intervals and conformal masks
    image, _ = next(iter(corrections.values()))
    info = backend.predict(image, MODEL, version, {"tta": "flips"}).prediction.info
    assert info["volumes"]["calibrated"] and info["conformal_masks"]["risk"] == pytest.approx(0.3)
    assert all("intervals" in entry for entry in info["volumes"]["classes"].values())


def test_too_few_unseen_cases_leave_the_version_uncalibrated_and_say_so(backend, corrections, uqseg_server):
    result = _finetune(backend, {"held_back_fraction": 0.9})  # a handful of cases, fewer than the default minimum
    note, version = result["uq_calibration"], result["version"]
    assert note["cases"] < MIN_CALIBRATION_CASES == 9
    assert note["status"] == "not calibrated" and note["tta"] == []
    assert f"a calibration needs at least {MIN_CALIBRATION_CASES}" in note["text"]
    assert "no intervals" in note["text"] and "uqseg conformal" in note["text"]
    assert _version_metrics(backend, version)["uq_calibration"]["status"] == "not calibrated"
    assert not (uqseg_server.data_dir / "models" / MODEL / version / CALIBRATION_FILE).exists()
    image, _ = next(iter(corrections.values()))
    info = backend.predict(image, MODEL, version).prediction.info
    assert info["volumes"]["calibrated"] is False and "conformal_masks" not in info
    assert all("intervals" not in entry for entry in info["volumes"]["classes"].values())
    # the parent keeps its own calibration
    parent = backend.predict(image, MODEL, "v1").prediction.info
    assert parent["volumes"]["calibrated"] and "conformal_masks" in parent


def test_recalibration_can_be_switched_off(backend, corrections):
    note = _finetune(backend, {"held_back_fraction": 0.9, "min_calibration_cases": 2, "recalibrate": False})[
        "uq_calibration"
    ]
    assert note["status"] == "not calibrated" and "asked not to recalibrate" in note["text"]
    with pytest.raises(BadRequest, match="min_calibration_cases"):
        backend.start_job("finetune", MODEL, {"options": {"min_calibration_cases": 1}})
