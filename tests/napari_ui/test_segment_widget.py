"""The segment widget end to end on a real loopback server (and the local backend): predict, review, correct, tune."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.napari_ui.layers import HEATMAP_COLORMAP, layer_affine, viewer_camera
from napari_uqseg.napari_ui.settings import load_settings
from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.testing.server import free_port

pytestmark = pytest.mark.gui

LONG = 120_000  # ms


def paint_correction(mask_layer):
    """An edit like one made with the brush: a block of class 1 where the model said background."""
    data = mask_layer.data
    data[0:3, 0:3, 0:3] = 1
    mask_layer.data = data


def test_remote_predict_review_correct_finetune(driver, qtbot, uqseg_server):
    viewer, widget = driver.open()
    driver.connect_remote(widget, uqseg_server.url, uqseg_server.token)
    assert widget.backend is not None, widget.connection.status.text()
    assert "Connected" in widget.connection.status.text()
    assert sorted(widget.models) == ["tiny_det", "tiny_mcd"]

    widget.model_combo.setCurrentText("tiny_mcd")
    assert widget.method_combo.currentData() == "mc_dropout"
    assert "forward passes per prediction" in widget.cost_label.text()
    assert "epistemic" in widget.cost_label.text()
    driver.predict(widget, "tiny_mcd")

    # layers: a mask (Labels) and a heatmap (Image) on the image's grid
    image = viewer.layers["synthetic scan"]
    mask, heat = viewer.layers["synthetic scan mask"], viewer.layers["synthetic scan uncertainty"]
    assert mask._type_string == "labels" and heat._type_string == "image"
    assert mask.data.shape == heat.data.shape == image.data.shape
    for layer in (mask, heat):
        np.testing.assert_allclose(layer.scale, image.scale)
        np.testing.assert_allclose(layer.translate, image.translate)
        np.testing.assert_allclose(layer_affine(layer), layer_affine(image))
    assert heat.colormap.name == HEATMAP_COLORMAP and heat.blending == "additive"

    # the total / aleatoric / epistemic switch, opacity and threshold
    maps = [widget.map_combo.itemData(i) for i in range(widget.map_combo.count())]
    assert {"entropy", "expected_entropy", "mutual_information"} <= set(maps)
    case = widget.cases["synthetic scan"]
    widget.map_combo.setCurrentIndex(maps.index("mutual_information"))
    np.testing.assert_allclose(heat.data, case.result.prediction.maps["mutual_information"].array)
    assert heat.metadata["map"] == "mutual_information"
    widget.opacity.setValue(35)
    assert heat.opacity == pytest.approx(0.35)
    widget.threshold.setValue(50)
    assert heat.contrast_limits[0] == pytest.approx(0.5 * heat.contrast_limits_range[1], rel=1e-3)

    # review: case list, slice table, region rows; a click moves the viewer
    assert widget.review.cases.count() == 1 and "synthetic scan" in widget.review.cases.item(0).text()
    assert widget.review.slices.rowCount() > 0
    cursor = case.cursor
    assert widget.review.regions.rowCount() == cursor.total > 1
    assert widget.review.progress.text() == f"0 of {cursor.total} reviewed"
    widget.review.select_row(1)
    region = cursor.current
    assert region.id == 2
    axis = cursor.ranking.axis  # the slider's axis (napari_ui.orientation): axial for this scan
    assert axis == viewer.dims.order[0] == 2
    world = mask.data_to_world(region.centroid)
    step = abs(mask.scale[axis])
    centre = list(region.centroid)
    centre[axis] = region.slice_index
    slice_world = mask.data_to_world(centre)[axis]
    assert abs(viewer.dims.point[axis] - slice_world) <= step / 2 + 1e-6
    shown = list(viewer.dims.displayed)
    np.testing.assert_allclose(viewer_camera(viewer).center[-2:], np.asarray(world)[shown], atol=1e-3)
    outline = viewer.layers["synthetic scan review region"]
    assert len(outline.data) == 1 and np.all(outline.data[0][:, axis] == region.slice_index)

    widget.review.buttons["done"].click()
    assert widget.review.progress.text() == f"1 of {cursor.total} reviewed"
    assert cursor.ranking.region(2).state == "done"

    # correction: edit the mask, submit it with the review state
    paint_correction(mask)
    widget.jobs.submit_button.click()
    qtbot.waitUntil(lambda: widget.jobs.submit_worker is None, timeout=LONG)
    assert "stored" in widget.jobs.submit_status.text(), widget.jobs.submit_status.text()
    assert len(widget.jobs.submitted) == 1
    # it carries what was reviewed: the done region's box and the painted voxels (core.reviewed)
    reviewed = DataDir(uqseg_server.data_dir).reviewed(widget.jobs.submitted[0]).array
    expected = mask.data != case.result.prediction.mask.array
    expected[tuple(slice(a, b) for a, b in cursor.ranking.region(2).bbox)] = True
    np.testing.assert_array_equal(reviewed, expected)

    # fine-tune: start, see progress, cancel
    widget.jobs.iterations.setValue(2000)
    widget.jobs.finetune_button.click()
    qtbot.waitUntil(lambda: widget.jobs.job is not None and widget.jobs.job.state == "running", timeout=LONG)
    widget.jobs.cancel_button.click()
    qtbot.waitUntil(lambda: widget.jobs.job_worker is None, timeout=LONG)
    assert widget.jobs.job.state == "cancelled", widget.jobs.job_status.text()
    assert "cancelled" in widget.jobs.job_status.text()
    assert widget.jobs.switch_button.isHidden()

    # fine-tune to the end, then switch to the new version
    widget.jobs.iterations.setValue(2)
    widget.jobs.finetune_button.click()
    qtbot.waitUntil(lambda: widget.jobs.job_worker is None, timeout=LONG)
    assert widget.jobs.job.state == "succeeded", widget.jobs.job_status.text()
    assert not widget.jobs.switch_button.isHidden()
    assert widget.jobs.metrics.rowCount() >= 1 and widget.jobs.figures.count() == 1
    assert widget.jobs.metrics.item(0, 0).text().startswith("validation mean Dice")  # one correction: none held back
    assert "don't promote: no held-back corrections" in widget.jobs.recommendation.text()
    new_version = widget.jobs.new_version[1]
    widget.jobs.switch_button.click()
    qtbot.waitUntil(lambda: widget.version_combo.currentData() == new_version, timeout=LONG)
    assert "(serving)" in widget.version_combo.currentText()


def test_connection_errors_in_plain_words(driver, uqseg_server):
    viewer, widget = driver.open()
    widget.predict_button.click()  # not connected yet
    assert "not connected" in widget.predict_status.text()
    driver.connect_remote(widget, f"http://127.0.0.1:{free_port()}", "x")
    text = widget.connection.status.text()
    assert widget.backend is None and "unreachable" in text and "Traceback" not in text
    assert widget.connection.status.property("error")
    driver.connect_remote(widget, uqseg_server.url, "wrong-token")
    assert widget.backend is None and "token" in widget.connection.status.text()
    driver.connect_remote(widget, "ftp://example.org", "")
    assert "must start with http" in widget.connection.status.text()

    driver.connect_remote(widget, uqseg_server.url, uqseg_server.token)
    widget.capabilities["limits"] = {"max_voxels": 1000}  # as a server with a small limit advertises
    widget.predict_button.click()
    assert "image too large" in widget.predict_status.text()
    assert widget.predict_worker is None


def test_connection_is_remembered(driver, uqseg_server):
    _, widget = driver.open()
    driver.connect_remote(widget, uqseg_server.url, uqseg_server.token)
    driver.predict(widget, "tiny_det")
    saved = load_settings()
    assert (saved.mode, saved.url, saved.token, saved.model) == (
        "remote",
        uqseg_server.url,
        uqseg_server.token,
        "tiny_det",
    )
    _, again = driver.open()
    assert again.connection.remote.isChecked() and again.connection.url.text() == uqseg_server.url
    assert again.connection.token.text() == uqseg_server.token


def test_local_backend_predicts_in_process(driver, local_data_dir):
    viewer, widget = driver.open()
    driver.connect_local(widget, local_data_dir)
    assert widget.backend is not None, widget.connection.status.text()
    assert type(widget.backend).__name__ == "LocalBackend"
    driver.predict(widget, "tiny_det")
    image, mask = viewer.layers["synthetic scan"], viewer.layers["synthetic scan mask"]
    np.testing.assert_allclose(layer_affine(mask), layer_affine(image))
    assert mask.data.dtype == np.uint8 and set(np.unique(mask.data)) <= {0, 1, 2}
    # a deterministic net has one map: nothing to switch between
    assert [widget.map_combo.itemData(i) for i in range(widget.map_combo.count())] == ["entropy"]
    assert load_settings().mode == "local" and load_settings().data_dir == str(local_data_dir)


def test_prediction_can_be_cancelled(driver, qtbot, local_data_dir):
    viewer, widget = driver.open()
    driver.connect_local(widget, local_data_dir)
    widget.model_combo.setCurrentText("tiny_mcd")
    widget.predict_button.click()
    assert widget.cancel_button.isEnabled() and not widget.predict_button.isEnabled()
    widget.cancel_button.click()
    qtbot.waitUntil(lambda: widget.predict_worker is None, timeout=120_000)
    assert widget.predict_status.text() == "Prediction cancelled."
    assert "synthetic scan mask" not in viewer.layers and not widget.cases
    assert widget.predict_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_finetune_result_with_member_warnings_is_shown_as_a_warning(driver):
    from napari_uqseg.core.records import JobStatus

    _, widget = driver.open(sample=False)
    warning = "'class 1': sample(s) 2 of 3 at Dice 0.00-0.00 against 0.90 for the best sample"
    result = {"model": "tiny_mcd", "version": "v2", "before": {}, "after": {}, "member_warnings": [warning]}
    widget.jobs._job_ended((JobStatus("j1", "finetune", "succeeded", 1.0, "done", result=result), None))
    text = widget.jobs.job_status.text()
    assert "v2 of tiny_mcd is ready, but its member check warns: 'class 1': sample(s) 2 of 3" in text
    assert widget.jobs.job_status.property("error") is True
    assert warning in widget.jobs.job_status.toolTip()
    assert not widget.jobs.switch_button.isHidden()  # the version is still offered; the user decides
    plain = {"model": "tiny_mcd", "version": "v3", "before": {}, "after": {}}
    widget.jobs._job_ended((JobStatus("j2", "finetune", "succeeded", 1.0, "done", result=plain), None))
    assert widget.jobs.job_status.text() == "Fine-tune finished: new version v3 of tiny_mcd is ready."


def test_remote_mode_fetches_outputs_as_the_region_of_interest(uqseg_server):
    from napari_uqseg.client.output_download import ROI_MARGIN
    from napari_uqseg.napari_ui.connection import make_backend
    from napari_uqseg.napari_ui.settings import Settings

    backend = make_backend(Settings(mode="remote", url=uqseg_server.url, token=uqseg_server.token))
    try:
        assert backend.roi_margin == ROI_MARGIN
    finally:
        backend.close()
