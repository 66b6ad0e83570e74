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


def test_predict_options_and_summary_text(results):
    from UQSegLib.calibrated import predict_options, summary_text

    from napari_uqseg.core.errors import InputError

    assert predict_options("none") == predict_options(None) == {}
    assert predict_options("flips") == {"tta": "flips"}
    with pytest.raises(InputError, match="unknown mode 'mirror'"):
        predict_options("mirror")
    calibrated, plain, _ = results
    assert summary_text(calibrated.calibrated).startswith(
        "TTA: flips. Outer contour: on average it misses at most 30 %"
    )
    assert "not calibrated" in summary_text(plain.calibrated) and "uqseg conformal" in summary_text(plain.calibrated)
    assert "Segment to see" in summary_text(None)


@pytest.fixture()
def section_class(monkeypatch):
    """``UQSegWidgets.calibrated.CalibratedSection`` imported against the fake ``qt`` (removed afterwards)."""
    import importlib
    import sys

    import fake_qt

    fake_qt.install(monkeypatch)
    monkeypatch.delitem(sys.modules, "UQSegWidgets.calibrated", raising=False)
    yield importlib.import_module("UQSegWidgets.calibrated").CalibratedSection
    sys.modules.pop("UQSegWidgets.calibrated", None)


def test_section_offers_every_tta_mode_and_shows_the_volume_table(section_class, results):
    import types

    from fake_qt import PanelLayout

    from napari_uqseg.core.wire import TTA_MODES

    widget = types.SimpleNamespace(layout=PanelLayout())
    section = section_class(widget)
    assert widget.layout.widgets[-1] == "stretch" and widget.layout.widgets[0].title == "Volumes and contours"
    combo = section.ttaComboBox
    assert [data for _, data in combo.items] == list(TTA_MODES)  # the modes the server knows, "none" first
    assert section.predictOptions() == {}
    combo.setCurrentIndex(combo.findData("flips"))
    assert section.predictOptions() == {"tta": "flips"}  # what onSegment passes to session.predict

    calibrated, plain, _ = results
    section.fill(calibrated)
    table = section.table
    assert table.headers == list(TABLE_COLUMNS)
    shown = [tuple(table.item(r, c).text() for c in range(table.columnCount)) for r in range(table.rowCount)]
    assert shown == volume_table_rows(calibrated.calibrated, calibrated.class_names) and len(shown) == 2
    assert all("-" in cell and cell != "not calibrated" for row in shown for cell in row[2:])
    assert "misses at most 30 %" in section.riskLabel.text
    section.fill(plain)  # an uncalibrated result replaces the rows and says so
    assert table.rowCount == 2 and table.item(0, 3).text() == "not calibrated"
    assert "not calibrated" in section.riskLabel.text


def test_module_passes_the_tta_choice_and_fills_the_section():
    import ast
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "slicer_module" / "UQSeg" / "UQSeg.py").read_text()
    widget = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "UQSegWidget")
    body = {f.name: ast.unparse(f) for f in widget.body if isinstance(f, ast.FunctionDef)}
    assert "self.calibratedSection = CalibratedSection(self)" in body["setup"]
    assert "options = self.calibratedSection.predictOptions()" in body["onSegment"]
    assert "predict(image, matrix, model, version, options," in body["onSegment"]
    assert "self.calibratedSection.fill(result)" in body["onSegmented"]
