"""LocalBackend: the same calls and results as RemoteBackend, in-process."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.client.errors import BadRequest, NotFoundError
from napari_uqseg.client.local import LocalBackend
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.sample_data import synthetic_case


@pytest.fixture(scope="module")
def local(tiny_models, tmp_path_factory):
    backend = LocalBackend(tmp_path_factory.mktemp("local") / "data", "cpu", models=tiny_models)
    yield backend
    backend.close()


def test_local_matches_remote(local, uqseg_server):
    image, _ = synthetic_case((24, 24, 24), seed=71)
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as remote:
        r = remote.predict(image, "tiny_det")
        assert {m.name for m in remote.models()} == {m.name for m in local.models()}
        assert [m.name for m in remote.methods()] == [m.name for m in local.methods()]
    lo = local.predict(image, "tiny_det")
    np.testing.assert_array_equal(lo.prediction.mask.array, r.prediction.mask.array)
    np.testing.assert_allclose(lo.prediction.probabilities.array, r.prediction.probabilities.array, atol=1 / 255)
    assert set(lo.prediction.maps) == set(r.prediction.maps)
    np.testing.assert_allclose(lo.prediction.mask.affine, image.affine)
    assert lo.review.map_name == r.review.map_name
    assert lo.review.case_score == pytest.approx(r.review.case_score, abs=0.01)


def test_local_loop_correction_finetune_promote_rollback(local):
    image, label = synthetic_case((24, 24, 24), seed=72)
    result = local.predict(image, "tiny_mcd")
    assert result.prediction.probabilities.shape == (3, *image.shape)
    cid = local.submit_correction(result.id, label, result.review, client_key="local-1")
    assert local.submit_correction(result.id, label, client_key="local-1") == cid
    job = local.start_job("finetune", "tiny_mcd", {"options": {"iterations": 4, "checkpoint_every": 2}})
    status = local.wait_job(job.id, timeout=180)
    assert status.state == "succeeded", status.error
    assert local.promote("tiny_mcd", status.result["version"]).serving == status.result["version"]
    assert local.predict(image, "tiny_mcd").version == status.result["version"]
    assert local.rollback("tiny_mcd").serving == "v1"


def test_local_typed_errors(local):
    image, _ = synthetic_case((24, 24, 24), seed=73)
    with pytest.raises(NotFoundError):
        local.predict(image, "no_such_model")
    with pytest.raises(BadRequest, match="unknown option"):
        local.predict(image, "tiny_det", options={"bogus": 1})
    with pytest.raises(NotFoundError):
        local.job("f" * 32)
    with pytest.raises(BadRequest):
        local.start_job("mine", "tiny_det")


def test_local_correction_keeps_its_reviewed_mask(local):
    from napari_uqseg.core.volume import Volume
    from napari_uqseg.server.job_runner import corrected_cases

    image, label = synthetic_case((24, 24, 24), seed=74)
    result = local.predict(image, "tiny_det")
    reviewed = np.zeros(image.shape, bool)
    reviewed[4:12, 2:20, 6:9] = True
    cid = local.submit_correction(result.id, label, result.review, reviewed=Volume(reviewed, image.affine))
    whole = local.submit_correction(result.id, label, result.review)
    cases = {c.case_id: c for c in corrected_cases(local.service.store, "tiny_det", [cid, whole])}
    assert np.array_equal(cases[cid].reviewed.array, reviewed) and cases[whole].reviewed is None
