"""A clinician's first minutes in napari: an empty data folder to a prediction through the starter model and
through "Import model...", and "Train a model..." started, followed and cancelled (or finished)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.core.archives import pack_model
from napari_uqseg.core.bundled_models import STARTER_MODEL_NAME
from napari_uqseg.napari_ui.layers import layer_kwargs

pytestmark = pytest.mark.gui

LONG = 240_000  # ms; waits end as soon as the condition holds


def _wait_panel(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: widget.model_panel.worker is None, timeout=LONG)


def test_empty_folder_to_prediction_with_the_starter_model(driver, qtbot, tmp_path):
    from napari_uqseg.core.sample_data import mni_brain

    viewer, widget = driver.open(sample=False)
    brain, _ = mni_brain(downsample=2)  # the 4 mm brain keeps the test quick; the model runs on any grid
    viewer.add_image(brain.array, name="brain", **layer_kwargs(brain))
    driver.connect_local(widget, tmp_path / "empty")
    assert widget.models == {}
    assert "no model yet" in widget.predict_status.text()
    widget.model_panel.starter_button.click()
    _wait_panel(qtbot, widget)
    assert "ready to predict" in widget.model_panel.status.text(), widget.model_panel.status.text()
    assert widget.model_combo.currentText() == STARTER_MODEL_NAME
    driver.predict(widget, STARTER_MODEL_NAME, image="brain")
    mask = viewer.layers["brain mask"].data
    assert set(np.unique(mask)) == {0, 1, 2}  # grey and white matter found
    assert "mutual_information" in widget.cases["brain"].result.prediction.maps


def test_empty_folder_to_prediction_through_import_model(driver, qtbot, tmp_path, tiny_models):
    archive = pack_model(tiny_models["tiny_mcd"], tmp_path / "shared drive" / "hippo model.tar.gz")
    viewer, widget = driver.open()
    driver.connect_local(widget, tmp_path / "empty")
    assert widget.models == {}
    widget.model_panel.import_model(str(archive))
    _wait_panel(qtbot, widget)
    assert "Imported hippo-model v1" in widget.model_panel.status.text(), widget.model_panel.status.text()
    driver.predict(widget, "hippo-model")
    assert viewer.layers["synthetic scan mask"].data.shape == viewer.layers["synthetic scan"].data.shape


def test_train_from_the_open_layers_starts_reports_and_cancels(driver, qtbot, tmp_path):
    viewer, widget = driver.open()  # the synthetic scan and its reference labels
    driver.connect_local(widget, tmp_path / "empty")
    panel = widget.model_panel
    panel.iterations.setValue(100_000)  # long enough to be cancelled while running
    panel.name.setText("from-layers")
    panel.train_from_layers("synthetic scan", "synthetic reference")
    qtbot.waitUntil(lambda: panel.job is not None and panel.job.state == "running", timeout=LONG)
    assert panel.cancel_button.isEnabled()
    assert "Training running" in panel.status.text()
    panel.cancel_training()
    _wait_panel(qtbot, widget)
    assert panel.job.state == "cancelled", panel.status.text()
    assert "Training cancelled" in panel.status.text()
    assert widget.backend.models() == []


def test_train_from_a_dataset_folder_finishes_with_the_member_check(driver, qtbot, tmp_path, synthetic_dataset):
    viewer, widget = driver.open()
    driver.connect_local(widget, tmp_path / "empty")
    panel = widget.model_panel
    panel.iterations.setValue(3)
    panel.name.setText("from-folder")
    panel.train_from_folder(str(synthetic_dataset))
    _wait_panel(qtbot, widget)
    assert panel.job is not None and panel.job.state == "succeeded", panel.status.text()
    assert "Trained from-folder v1: ready to predict." in panel.status.text()
    assert "Member check:" in panel.status.text()
    assert widget.model_combo.currentText() == "from-folder"
    driver.predict(widget, "from-folder")
