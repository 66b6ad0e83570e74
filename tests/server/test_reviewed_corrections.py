"""A correction's reviewed mask: through a real server, into the SQLite ledger and the data folder, back out
to the fine-tune, which trains a partial correction on its reviewed voxels only."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from napari_uqseg.client.errors import BackendError
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine import data as data_module
from napari_uqseg.engine.data import IGNORE_LABEL
from napari_uqseg.engine.finetune import CorrectedCase, FinetuneOptions, finetune
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model
from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.server.job_runner import corrected_cases


def _half(shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[: shape[0] // 2] = True
    return mask


def test_reviewed_mask_round_trip_and_a_masked_finetune_job(uqseg_backend, uqseg_server):
    image, label = synthetic_case((24, 24, 24), seed=41)
    result = uqseg_backend.predict(image, "tiny_det")
    reviewed = _half(image.shape)
    partial = uqseg_backend.submit_correction(
        result.id, label, result.review, client_key="rev-1", reviewed=Volume(reviewed, image.affine)
    )
    same = uqseg_backend.submit_correction(
        result.id, label, result.review, client_key="rev-1", reviewed=Volume(reviewed, image.affine)
    )
    assert same == partial  # a faithful retry stores nothing twice
    with pytest.raises(BackendError) as conflict:  # the same key with another reviewed mask is another correction
        uqseg_backend.submit_correction(
            result.id, label, result.review, client_key="rev-1", reviewed=Volume(~reviewed, image.affine)
        )
    assert conflict.value.status == 409
    whole = uqseg_backend.submit_correction(result.id, label, result.review, client_key="rev-2")

    store = DataDir(uqseg_server.data_dir)  # a second reader of the server's SQLite ledger and files
    rows = {r["id"]: r for r in store.ledger.corrections("tiny_det", [partial, whole])}
    assert rows[partial]["reviewed_voxels"] == int(reviewed.sum()) and rows[whole]["reviewed_voxels"] is None
    cases = {c.case_id: c for c in corrected_cases(store, "tiny_det", [partial, whole])}
    assert np.array_equal(cases[partial].reviewed.array, reviewed)
    np.testing.assert_allclose(cases[partial].reviewed.affine, image.affine, atol=1e-5)
    assert cases[whole].reviewed is None  # no mask: the whole case was reviewed
    assert len(list((uqseg_server.data_dir / "corrections").glob("*.reviewed.nii.gz"))) == 1  # the conflict left none

    options = {"iterations": 2, "checkpoint_every": 1, "held_back_fraction": 0.0, "regression_cases": 1}
    options["loss_mask"] = "reviewed"
    job = uqseg_backend.start_job("finetune", "tiny_det", {"corrections": [partial, whole], "options": options})
    status = uqseg_backend.wait_job(job.id, timeout=300)
    assert status.state == "succeeded", status.error
    assert status.result["loss_mask"] == {"mode": "reviewed", "partial": [partial]}


@pytest.mark.parametrize(
    ("change", "problem"),
    [("values", "only 0"), ("shape", "shape"), ("empty", "no voxel"), ("base64", "base64")],
)
def test_bad_reviewed_masks_are_refused_by_name(uqseg_backend, uqseg_server, change, problem):
    import requests

    image, label = synthetic_case((24, 24, 24), seed=42)
    result = uqseg_backend.predict(image, "tiny_det")
    mask = _half(image.shape).astype(np.uint8)
    if change == "values":
        mask *= 2
    elif change == "shape":
        mask = mask[:, :, :-1]
    elif change == "empty":
        mask[:] = 0
    encoded = base64.b64encode(nifti_bytes(Volume(mask, image.affine), dtype=np.uint8)).decode()
    body = {
        "prediction": result.id,
        "label": base64.b64encode(nifti_bytes(label, dtype=np.uint8)).decode(),
        "reviewed": "not base64!" if change == "base64" else encoded,
    }
    headers = {"Authorization": f"Bearer {uqseg_server.token}"}
    r = requests.post(f"{uqseg_server.url}/v1/corrections", json=body, headers=headers, timeout=60)
    assert r.status_code == 400 and problem in r.json()["error"]["message"], r.text
    assert r.json()["error"]["source"] == "reviewed"
    with pytest.raises(InputError, match="no voxel"):  # the client checks its own mask before sending
        uqseg_backend.submit_correction(result.id, label, reviewed=Volume(np.zeros(image.shape, bool), image.affine))


def _record_fitted_labels(monkeypatch) -> dict[str, np.ndarray]:
    """The label of every case the fine-tune's patch sampler is built on, by case id (filled as it runs)."""
    labels_fitted: dict[str, np.ndarray] = {}
    original = data_module.PatchSampler.__init__

    def recording(self, cases, *args, **kwargs):
        labels_fitted.update({c.case_id: c.label for c in cases})
        original(self, cases, *args, **kwargs)

    monkeypatch.setattr(data_module.PatchSampler, "__init__", recording)
    return labels_fitted


def test_finetune_trains_the_correction_on_its_reviewed_voxels_only(tiny_models, tmp_path, monkeypatch):
    image, label = synthetic_case((24, 24, 24), seed=43)
    reviewed = _half(image.shape)
    labels_fitted = _record_fitted_labels(monkeypatch)
    cases = [CorrectedCase("partial", image, label, Volume(reviewed, image.affine))]
    options = FinetuneOptions(
        iterations=2, checkpoint_every=2, batch_size=2, held_back_fraction=0.0, loss_mask="reviewed"
    )
    report = finetune(tiny_models["tiny_det"], cases, tmp_path / "out", tmp_path / "work", options)

    fitted = labels_fitted["partial"]
    assert (fitted[~reviewed] == IGNORE_LABEL).all()
    assert np.array_equal(fitted[reviewed], label.array[reviewed])
    replayed = [v for k, v in labels_fitted.items() if k != "partial"]
    assert replayed and not any((v == IGNORE_LABEL).any() for v in replayed)  # replay is never masked
    assert report["loss_mask"] == {"mode": "reviewed", "partial": ["partial"]}


def test_confident_mask_adds_the_parents_confident_voxels_from_its_own_before_pass(tiny_models, tmp_path, monkeypatch):
    image, label = synthetic_case((24, 24, 24), seed=44)
    reviewed = _half(image.shape)
    top = predict_volume(load_model(tiny_models["tiny_det"]), image, output_dtype="float32").probabilities.array.max(0)
    cut = float(np.median(top[~reviewed]))  # half of the unreviewed voxels are confident
    labels_fitted = _record_fitted_labels(monkeypatch)
    cases = [CorrectedCase("partial", image, label, Volume(reviewed, image.affine))]
    options = FinetuneOptions(
        iterations=2, checkpoint_every=2, batch_size=2, held_back_fraction=0.0, pseudo_label_confidence=cut
    )
    report = finetune(tiny_models["tiny_det"], cases, tmp_path / "out", tmp_path / "work", options)

    kept = reviewed | (top >= cut)
    fitted = labels_fitted["partial"]
    assert 0 < (~kept).sum() < (~reviewed).sum()
    assert np.array_equal(fitted[kept], label.array[kept]) and (fitted[~kept] == IGNORE_LABEL).all()
    assert report["loss_mask"] == {"mode": "confident", "partial": ["partial"]}
