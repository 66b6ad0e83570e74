"""The whole loop over real HTTP: upload, predict (two methods), outputs, correction, fine-tune, promote, roll back."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import float_map_from_bytes
from napari_uqseg.core.sample_data import synthetic_case


def test_capabilities_list_methods_models_device_limits(uqseg_backend):
    caps = uqseg_backend.capabilities()
    assert caps["protocol"] == 1 and caps["device"] == "cpu"
    names = {m["name"] for m in caps["methods"]}
    assert {"deterministic", "mc_dropout", "deep_ensemble", "masksembles"} <= names
    assert {m["name"]: m["serving"] for m in caps["models"]} == {"tiny_det": "v1", "tiny_mcd": "v1"}
    assert caps["limits"]["max_upload_bytes"] > 0 and caps["limits"]["max_voxels"] > 0
    assert next(m for m in uqseg_backend.methods() if m.name == "mc_dropout").forward_passes == 10


def test_full_loop(uqseg_backend, uqseg_server):
    image, label = synthetic_case((24, 24, 24), seed=21)
    results = {}
    for model in ("tiny_det", "tiny_mcd"):
        r = uqseg_backend.predict(image, model)
        results[model] = r
        pred = r.prediction
        assert pred.mask.shape == image.shape and pred.probabilities.shape == (3, *image.shape)
        np.testing.assert_allclose(pred.mask.affine, image.affine)
        np.testing.assert_allclose(pred.probabilities.array.sum(axis=0), 1.0, atol=0.02)  # uint8 quantisation
        for name, volume in pred.maps.items():
            assert volume.shape == image.shape, name
            np.testing.assert_allclose(volume.affine, image.affine)
        assert set(r.timings) >= {"upload", "request", "download", "inference", "queue"}
        assert r.review.map_name in pred.maps and len(r.review.slice_scores) == image.shape[0]
    assert set(results["tiny_mcd"].prediction.maps) == {
        "entropy",
        "expected_entropy",
        "mutual_information",
        "class_std",
    }
    assert set(results["tiny_det"].prediction.maps) == {"entropy"}

    r = results["tiny_mcd"]
    correction = uqseg_backend.submit_correction(r.id, label, r.review, client_key="e2e-key-1")
    assert uqseg_backend.submit_correction(r.id, label, r.review, client_key="e2e-key-1") == correction  # idempotent

    job = uqseg_backend.start_job("finetune", "tiny_mcd", {"options": {"iterations": 6, "checkpoint_every": 3}})
    status = uqseg_backend.wait_job(job.id, timeout=180)
    assert status.state == "succeeded", status.error
    new = status.result["version"]
    assert new == "v2" and status.result["parent"] == "v1"
    # one correction: it is trained on, nothing is held back, so the verdict cannot be "promote"
    assert status.result["finetuned_on"] == [correction] and status.result["held_back"] == []
    assert status.result["before"] == {} and status.result["recommendation"]["promote"] is False
    assert 0 <= status.result["regression"]["after"]["mean_dice"] <= 1  # the tiny model's own validation cases
    model = next(m for m in uqseg_backend.models() if m.name == "tiny_mcd")
    assert model.serving == "v1" and [v.version for v in model.versions] == ["v1", "v2"]  # not served until promoted

    assert uqseg_backend.promote("tiny_mcd", new).serving == "v2"
    after = uqseg_backend.predict(image, "tiny_mcd")
    assert after.version == "v2" and after.prediction.mask.shape == image.shape
    assert uqseg_backend.rollback("tiny_mcd").serving == "v1"
    events = requests.get(
        f"{uqseg_server.url}/v1/jobs/{job.id}/events",
        headers={"Authorization": f"Bearer {uqseg_server.token}"},
        timeout=30,
    ).text
    assert events.startswith("event: status") and '"state": "succeeded"' in events
    assert uqseg_backend.predict(image, "tiny_mcd").version == "v1"
    assert uqseg_backend.predict(image, "tiny_mcd", version="v2").version == "v2"  # explicit versions stay usable


def test_float32_outputs_are_exact_and_uint8_close(uqseg_backend, uqseg_server):
    image, _ = synthetic_case((24, 24, 24), seed=22)
    sha = uqseg_backend.upload_image(image)
    summary = requests.post(
        f"{uqseg_server.url}/v1/predictions",
        json={"image": sha, "model": "tiny_det", "options": {"float32": True}},
        headers={"Authorization": f"Bearer {uqseg_server.token}"},
        timeout=60,
    ).json()
    exact = float_map_from_bytes(uqseg_backend.output(summary["id"], "entropy", dtype="float32")).array
    quantised = float_map_from_bytes(uqseg_backend.output(summary["id"], "entropy")).array
    assert exact.dtype == np.float32 and exact.shape == image.shape
    assert np.abs(exact - quantised).max() <= max(exact.max(), 1.0) / 255 / 2 + 1e-6


def test_same_image_is_stored_once(uqseg_backend, uqseg_server):
    image, _ = synthetic_case((24, 24, 24), seed=23)
    sha = uqseg_backend.upload_image(image)
    assert uqseg_backend.upload_image(image) == sha
    assert (uqseg_server.data_dir / "images" / sha).is_file()
    assert len([p for p in (uqseg_server.data_dir / "images").iterdir() if p.name == sha]) == 1


def test_tta_option_and_calibrated_volumes_travel_to_the_client(uqseg_backend):
    image, _ = synthetic_case((24, 24, 24), seed=23)
    plain = uqseg_backend.predict(image, "tiny_det")
    augmented = uqseg_backend.predict(image, "tiny_det", options={"tta": "flips"})
    assert plain.prediction.info["tta"] == "none" and augmented.prediction.info["tta"] == "flips"
    assert augmented.prediction.info["samples"] == 4 and "mutual_information" in augmented.prediction.maps
    assert "mutual_information" not in plain.prediction.maps
    for result in (plain, augmented):
        volumes = result.prediction.info["volumes"]
        assert volumes["calibrated"] and set(volumes["classes"]) == {"1", "2"}
        assert result.prediction.info["conformal_masks"]["risk"] == 0.3
    assert augmented.prediction.info["volumes"]["source"] == "samples"
    with pytest.raises(InputError, match="options.tta"):
        uqseg_backend.predict(image, "tiny_det", options={"tta": "rotate"})
