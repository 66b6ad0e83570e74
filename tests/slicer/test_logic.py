"""``UQSegLib`` against a real loopback ``uqseg serve``: predict, review, corrections, jobs, versions, errors.

Arrays are given the way Slicer gives them: ``[k, j, i]`` plus an IJK-to-RAS matrix of a volume loaded from an
LPS file (oblique, anisotropic), so every test also exercises the geometry on a real server.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import nibabel as nib
import numpy as np
import pytest
from UQSegLib.background import BackgroundWorker
from UQSegLib.geometry import LPS_TO_RAS, ras_to_voxel
from UQSegLib.logic import CaseReview, UQSegSession

from napari_uqseg.client import AuthError, ConnectionFailed, NotFoundError, ProtocolMismatch, describe_error
from napari_uqseg.core.errors import CancelledError, InputError
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.server import free_port

SHAPE_IJK = (24, 20, 16)


def slicer_matrix() -> np.ndarray:
    """IJK-to-RAS of a node loaded from an LPS file with a rotated, anisotropic grid."""
    angle = np.deg2rad(15.0)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.array([[np.cos(angle), 0, -np.sin(angle)], [0, 1, 0], [np.sin(angle), 0, np.cos(angle)]])
    ijk_to_lps[:3, :3] = ijk_to_lps[:3, :3] @ np.diag([1.0, 1.2, 1.5])
    ijk_to_lps[:3, 3] = [20.0, -15.0, 30.0]
    return LPS_TO_RAS @ ijk_to_lps


@pytest.fixture(scope="module")
def case():
    """``(image_kji, ijk_to_ras)`` of a synthetic scan as Slicer would hand it over."""
    image, _ = synthetic_case(SHAPE_IJK, seed=5)
    return np.ascontiguousarray(image.array.transpose(2, 1, 0)), slicer_matrix()


@pytest.fixture(scope="module")
def session(uqseg_server):
    s = UQSegSession.connect(uqseg_server.url, uqseg_server.token)
    yield s
    s.close()


def test_the_session_fetches_outputs_as_the_region_of_interest(session):
    from napari_uqseg.client.output_download import ROI_MARGIN

    assert session.backend.roi_margin == ROI_MARGIN


@pytest.fixture(scope="module")
def result(session, case):
    image_kji, matrix = case
    return session.predict(image_kji, matrix, "tiny_mcd", source="case")


def edited_label(mask_kji: np.ndarray) -> np.ndarray:
    """The prediction with a block painted as class 1 (what a user does in the Segment Editor)."""
    label = mask_kji.copy()
    label[4:8, 5:9, 6:12] = 1
    return label


def test_connect_lists_models_and_methods(session, uqseg_server):
    info = session.info()
    assert info.protocol == "1" and info.url == uqseg_server.url
    assert {"tiny_det", "tiny_mcd"} <= {m.name for m in info.models}
    assert {"deterministic", "mc_dropout"} <= {m.name for m in info.methods}
    assert info.describe() == f"{uqseg_server.url}: protocol 1, cpu, {len(info.models)} model(s)"
    assert next(m for m in info.models if m.name == "tiny_mcd").method_of() == "mc_dropout"


def test_prediction_comes_back_in_slicer_order_on_the_input_grid(session, case):
    image_kji, matrix = case
    result = session.predict(image_kji, matrix, "tiny_det")
    assert result.mask_kji.shape == image_kji.shape and result.mask_kji.dtype == np.uint8
    assert set(result.maps_kji) >= {"entropy"}
    assert all(m.shape == image_kji.shape and m.dtype == np.float32 for m in result.maps_kji.values())
    np.testing.assert_allclose(result.ijk_to_ras, matrix)
    # the same scan sent directly in NIfTI order: the server saw our matrix as its affine and answered on it
    direct = session.backend.predict(Volume(image_kji.transpose(2, 1, 0), matrix), "tiny_det", options={"axis": 2})
    np.testing.assert_allclose(direct.prediction.mask.affine, matrix, atol=1e-4)
    np.testing.assert_array_equal(result.mask_kji, direct.prediction.mask.array.transpose(2, 1, 0))
    np.testing.assert_allclose(
        result.maps_kji["entropy"], direct.prediction.maps["entropy"].array.transpose(2, 1, 0), atol=1e-6
    )
    assert set(result.class_names) >= {int(v) for v in np.unique(result.mask_kji) if v}
    assert result.method == "deterministic" and result.version == "v1"


def test_review_table_is_ranked_most_uncertain_first(result):
    assert {"entropy", "mutual_information"} <= set(result.maps_kji)
    review = CaseReview(result)
    rows = review.rows()
    assert rows, "an MC-Dropout prediction has uncertain regions"
    wrong = [r.expected_errors for r in review.ranking.regions]  # the server ranks by probably wrong voxels
    assert review.ranking.rank_by == "expected_errors" and wrong == sorted(wrong, reverse=True)
    assert [r.region_id for r in rows] == list(range(1, len(rows) + 1))
    assert max(r.voxels for r in review.ranking.regions) <= review.ranking.max_region_voxels
    assert review.ranking.axis == 2  # ranked along K, the axial direction for this scan
    for row in rows:  # every jump target lies inside the scan
        ijk = ras_to_voxel(np.array(row.center_ras), result.ijk_to_ras)
        assert np.all(ijk >= -0.5) and np.all(ijk <= np.array(SHAPE_IJK) - 0.5)
    review.rerank("mutual_information")
    assert review.ranking.map_name == "mutual_information"
    assert [r.region_id for r in review.rows()] == list(range(1, len(review.rows()) + 1))
    review.rerank("entropy")  # re-ranked here from the map alone: by uncertainty mass, within the same bound
    masses = [r.mass for r in review.ranking.regions]
    assert review.ranking.rank_by == "mass" and masses == sorted(masses, reverse=True)
    assert all(r.voxels <= review.ranking.max_region_voxels for r in review.ranking.regions)


def test_correction_round_trip_keeps_grid_and_review_state(session, result, case, uqseg_server):
    _, matrix = case
    review = CaseReview(result)
    first = review.rows()[0].region_id
    review.set_state(first, "flagged")
    label = edited_label(result.mask_kji)
    cid = session.submit_correction(result, label, matrix, review.ranking)
    assert session.submit_correction(result, label, matrix, review.ranking) == cid  # pressing Submit twice

    stored = nib.load(uqseg_server.data_dir / "corrections" / f"{cid}.nii.gz")
    np.testing.assert_array_equal(np.asarray(stored.dataobj), label.transpose(2, 1, 0))
    np.testing.assert_allclose(stored.affine, matrix, atol=1e-4)
    with sqlite3.connect(uqseg_server.data_dir / "ledger.sqlite") as db:
        (saved,) = db.execute("SELECT review FROM corrections WHERE id=?", (cid,)).fetchone()
    regions = {r["id"]: r["state"] for r in json.loads(saved)["regions"]}
    assert regions[first] == "flagged"

    with pytest.raises(InputError, match="differs from the volume's"):
        session.submit_correction(result, label[:, :, :-1], matrix)
    shifted = matrix.copy()
    shifted[2, 3] += 3.0
    with pytest.raises(InputError, match="not on the input volume's grid"):
        session.submit_correction(result, label, shifted)


def test_correction_with_regions_done_carries_the_reviewed_voxels(session, result, case, uqseg_server):
    _, matrix = case
    review = CaseReview(result)
    first = review.rows()[0].region_id
    review.set_state(first, "done")
    try:
        label = edited_label(result.mask_kji)
        cid = session.submit_correction(result, label, matrix, review.ranking)
        box = tuple(slice(a, b) for a, b in review.ranking.region(first).bbox)
    finally:
        review.set_state(first, "todo")  # the module's result is shared with the other tests
    stored = nib.load(uqseg_server.data_dir / "corrections" / f"{cid}.reviewed.nii.gz")
    expected = label.transpose(2, 1, 0) != result.mask_kji.transpose(2, 1, 0)  # the painted voxels (IJK)
    expected[box] = True  # and the done region's box
    np.testing.assert_array_equal(np.asarray(stored.dataobj) > 0, expected)
    np.testing.assert_allclose(stored.affine, matrix, atol=1e-4)


def wait_finished(session: UQSegSession, job_id: str, timeout: float = 240.0):
    """Poll as the module's timer does: one non-blocking ``step()`` per tick."""
    watch = session.watch_job(job_id)
    deadline = time.monotonic() + timeout
    while not watch.step().finished:
        assert time.monotonic() < deadline, f"job {job_id} still {watch.status.state}"
        time.sleep(0.5)
    return watch.status


def test_finetune_start_and_cancel_keeps_the_served_version(session, result, case):
    _, matrix = case
    session.submit_correction(result, edited_label(result.mask_kji), matrix)
    started = session.start_finetune("tiny_mcd")
    assert started.kind == "finetune" and started.state in ("queued", "running")
    session.cancel_job(started.id)
    assert wait_finished(session, started.id).state == "cancelled"
    served = next(m for m in session.models() if m.name == "tiny_mcd")
    assert served.serving == "v1" and [v.version for v in served.versions] == ["v1"]


def test_finetune_then_switch_and_roll_back_versions(session, case):
    image_kji, matrix = case
    det = session.predict(image_kji, matrix, "tiny_det")
    session.submit_correction(det, edited_label(det.mask_kji), matrix)
    done = wait_finished(session, session.start_finetune("tiny_det").id)
    assert done.state == "succeeded", done.error
    model = next(m for m in session.models() if m.name == "tiny_det")
    assert model.serving == "v1" and "v2" in {v.version for v in model.versions}  # never served on its own
    assert session.switch_version("tiny_det", "v2").serving == "v2"
    assert session.predict(image_kji, matrix, "tiny_det").version == "v2"
    assert session.rollback("tiny_det").serving == "v1"


def test_predict_through_the_worker_can_be_cancelled(session, case):
    image_kji, matrix = case
    worker = BackgroundWorker()
    done, errors = [], []
    try:
        task = worker.submit(
            lambda progress: session.predict(image_kji, matrix, "tiny_mcd", progress=progress),
            done.append,
            errors.append,
            on_progress=lambda d, t, m: task.cancel() if d >= 1 else None,  # cancel once the upload is done
            label="predict",
        )
        deadline = time.monotonic() + 60
        while not (done or errors):
            assert time.monotonic() < deadline
            worker.poll()
            time.sleep(0.01)
    finally:
        worker.shutdown()
    assert not done and isinstance(errors[0], CancelledError)
    assert describe_error(errors[0]) == "Cancelled."


def test_server_down_is_a_clear_error():
    with pytest.raises(ConnectionFailed) as err:
        UQSegSession.connect(f"http://127.0.0.1:{free_port()}", "token", timeout=2.0)
    assert "cannot reach the server" in describe_error(err.value)


def test_bad_token_is_a_clear_error(uqseg_server):
    with pytest.raises(AuthError) as err:
        UQSegSession.connect(uqseg_server.url, "not-the-token")
    assert "token" in describe_error(err.value)


class FutureServer(BaseHTTPRequestHandler):
    """A server that speaks a newer protocol than this client."""

    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "protocol": 99, "server_version": "9.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_protocol_version_mismatch_is_a_clear_error():
    server = HTTPServer(("127.0.0.1", 0), FutureServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(ProtocolMismatch) as err:
            UQSegSession.connect(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert "server too new" in describe_error(err.value)


def test_bad_requests_name_the_problem(session, case):
    image_kji, matrix = case
    with pytest.raises(InputError, match="server URL: is empty"):
        UQSegSession.connect("  ")
    with pytest.raises(NotFoundError, match="no_such_model"):
        session.predict(image_kji, matrix, "no_such_model")
    with pytest.raises(InputError, match="scan: expected a 3D scalar volume"):
        session.predict(image_kji[..., None].repeat(3, axis=-1), matrix, "tiny_det", source="scan")
    with pytest.raises(InputError, match="NaN or Inf"):
        session.predict(np.full(image_kji.shape, np.nan, np.float32), matrix, "tiny_det")
