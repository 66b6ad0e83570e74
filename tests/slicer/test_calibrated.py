"""Volumes with calibrated intervals and conformal contours in the Slicer module: logic on a real loopback server,
the scene side on the fake MRML layer."""

from __future__ import annotations

import numpy as np
import pytest
from test_logic import SHAPE_IJK, slicer_matrix
from UQSegLib.calibrated import TABLE_COLUMNS, volume_table_rows
from UQSegLib.logic import UQSegSession

from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume


@pytest.fixture(scope="module")
def results(uqseg_server):
    image, _ = synthetic_case(SHAPE_IJK, seed=6)
    image_kji, matrix = np.ascontiguousarray(image.array.transpose(2, 1, 0)), slicer_matrix()
    session = UQSegSession.connect(uqseg_server.url, uqseg_server.token)
    try:
        calibrated = session.predict(image_kji, matrix, "tiny_det", options={"tta": "flips"}, source="case")
        plain = session.predict(image_kji, matrix, "tiny_mcd", source="case")
        direct = session.backend.predict(Volume(image.array, matrix), "tiny_det", options={"tta": "flips", "axis": 2})
    finally:
        session.close()
    return calibrated, plain, direct


def test_volume_table_and_contours_on_the_input_grid(results):
    calibrated, _, direct = results
    outputs = calibrated.calibrated
    assert outputs.tta == "flips" and "misses at most 30 %" in outputs.risk_text
    rows = volume_table_rows(outputs, calibrated.class_names)
    assert [len(r) for r in rows] == [len(TABLE_COLUMNS)] * 2
    for row, (c, entry) in zip(rows, direct.prediction.info["volumes"]["classes"].items(), strict=True):
        assert row[0] == calibrated.class_names[int(c)] and row[1] == f"{entry['volume']:.2f}"
        lo, hi = entry["intervals"]["0.9"]
        assert row[3] == f"{lo:.2f}-{hi:.2f}"
    # contours in Slicer's KJI order equal the masks drawn from the NIfTI-ordered probabilities
    probs = direct.prediction.probabilities.array
    for kind in ("outer", "inner"):
        assert outputs.contours_kji[kind].shape == calibrated.mask_kji.shape
    t = direct.prediction.info["conformal_masks"]["classes"]["2"]["outer"]
    expected = (probs[2] >= t - 0.5 / 255).transpose(2, 1, 0)
    np.testing.assert_array_equal(outputs.contours_kji["outer"] == 2, expected)


def test_uncalibrated_model_says_so(results):
    _, plain, _ = results
    assert plain.calibrated.contours_kji == {} and plain.calibrated.risk_text == ""
    assert all(row[2:] == ("not calibrated",) * 3 for row in volume_table_rows(plain.calibrated, plain.class_names))


def test_scene_gets_outline_contours_and_volume_tags(fake_slicer, results):
    scene, adapter = fake_slicer
    import slicer

    calibrated, plain, _ = results
    node = slicer.util.addVolumeFromArray(np.ones(calibrated.mask_kji.shape, np.float32), ijkToRAS=slicer_matrix())
    node.SetName("scan")
    view = adapter.ResultView()
    view.show(calibrated, node)
    contours = view.contour_node
    names = [
        contours.GetSegmentation().GetSegment(contours.GetSegmentation().GetNthSegmentID(i)).GetName()
        for i in range(contours.GetSegmentation().GetNumberOfSegments())
    ]
    assert names == ["outer class_1", "outer class_2", "inner class_1", "inner class_2"]
    display = contours.GetDisplayNode()
    assert display.fill_2d is False and display.outline_2d is True
    assert "misses at most 30 %" in contours.GetAttribute("UQSeg.Risk")
    segment = view.segmentation_node.GetSegmentation().GetSegment(view.segment_ids[1])
    assert segment.tags["UQSeg.Volume [mL]"] == volume_table_rows(calibrated.calibrated, calibrated.class_names)[0][1]
    assert segment.tags["UQSeg.90% interval [mL]"] == volume_table_rows(calibrated.calibrated, {1: "class_1"})[0][3]
    view.show(plain, node)  # an uncalibrated result removes the earlier contours
    assert view.contour_node.GetSegmentation().GetNumberOfSegments() == 0
