"""The "Volumes and contours" panel on a real loopback server: TTA option, calibrated volumes, conformal contours."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.napari_ui.calibrated_panel import ROUNDING

pytestmark = pytest.mark.gui


def test_tta_volumes_and_conformal_contours(driver, uqseg_server):
    viewer, widget = driver.open()
    driver.connect_remote(widget, uqseg_server.url, uqseg_server.token)
    panel = widget.calibrated
    panel.tta_combo.setCurrentIndex(panel.tta_combo.findData("flips"))
    driver.predict(widget, "tiny_det")

    case = widget.cases["synthetic scan"]
    info = case.result.prediction.info
    assert info["tta"] == "flips" and info["samples"] == 4
    assert "mutual_information" in [widget.map_combo.itemData(i) for i in range(widget.map_combo.count())]

    # volumes with their calibrated interval, and the guarantee in plain words
    text = panel.text.text()
    assert "TTA: flips" in text and "90 % interval" in text and " mL" in text
    assert "misses at most 30 % of the structure" in text

    # contours: label layers drawn as outlines, the outer around the inner, from the reported thresholds
    outer = viewer.layers["synthetic scan outer contour"]
    inner = viewer.layers["synthetic scan inner contour"]
    assert outer.contour == 1 and inner.contour == 1 and outer.visible
    probs = case.result.prediction.probabilities.array
    thresholds = info["conformal_masks"]["classes"]
    for c, t in thresholds.items():
        k = int(c)
        expected_outer = probs[k] >= t["outer"] - ROUNDING
        assert np.array_equal(outer.data == k, expected_outer & ~np.isin(outer.data, list(range(k + 1, 3))))
        assert np.all(expected_outer[probs[k] >= t["inner"] + ROUNDING])  # inner inside outer
    assert (outer.data > 0).sum() >= (inner.data > 0).sum()
    np.testing.assert_allclose(outer.scale, case.layers.mask.scale)

    panel.show_contours.setChecked(False)
    assert not outer.visible and not inner.visible

    # an uncalibrated model: the old contours go, the panel says why there are none
    panel.tta_combo.setCurrentIndex(panel.tta_combo.findData("none"))
    driver.predict(widget, "tiny_mcd")
    assert "synthetic scan outer contour" not in viewer.layers
    assert "not calibrated" in panel.text.text() and "no calibrated interval" in panel.text.text()
