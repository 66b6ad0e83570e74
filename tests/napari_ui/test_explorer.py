"""The "Explore evaluation" widget on a real napari viewer (under Xvfb) with reports made by `uqseg evaluate`."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_uqseg.cli import main
from napari_uqseg.core.report import FALSE_NEGATIVE, FALSE_POSITIVE, read_report
from napari_uqseg.napari_ui.explorer_model import ERROR_COLOURS
from napari_uqseg.napari_ui.explorer_widget import ExplorerWidget

pytestmark = pytest.mark.gui

LAYERS = ["image", "uncertainty: entropy", "ground truth", "prediction", "error"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory, synthetic_dataset):
    """Two reports on the same 8 synthetic cases: a deterministic U-Net (A) and MC-Dropout (B)."""
    from napari_uqseg.bench.tiny_models import TINY_CONFIG
    from napari_uqseg.engine.make_model import train

    root = tmp_path_factory.mktemp("explorer")
    out = {}
    for name, options in (("deterministic", {}), ("mc_dropout", {"samples": 2})):
        model = train(name, synthetic_dataset, root / f"model_{name}", {**TINY_CONFIG, "method": options}, device="cpu")
        report = root / f"report_{name}"
        argv = ["evaluate", "--model", str(model), "--data", str(synthetic_dataset), "--report", str(report)]
        assert main([*argv, "--device", "cpu"]) == 0
        out[name] = report
    return out


@pytest.fixture()
def explorer(make_napari_viewer, reports):
    viewer = make_napari_viewer()
    widget = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.open_report(reports["deterministic"])
    return viewer, widget


def test_table_sorts_by_every_column(explorer):
    _, widget = explorer
    report = widget.model.report
    assert widget.table.rowCount() == 8
    widget.sort_by("dice")
    dice = [report.case(c).dice for c in widget.case_order()]
    assert dice == sorted(dice)  # worst (lowest Dice) first
    widget.sort_by("case_score")
    scores = [report.case(c).case_score for c in widget.case_order()]
    assert scores == sorted(scores, reverse=True)
    widget.sort_by("ece")
    ece = [report.case(c).ece for c in widget.case_order()]
    assert ece == sorted(ece, reverse=True)
    widget.sort_by("silent_failure")
    silent = [float(widget.table.item(r, 4).text()) for r in range(8)]
    assert silent == sorted(silent, reverse=True)
    assert widget.table.horizontalHeaderItem(4).text() == "silent failure"
    # clicking a header sorts by it; clicking it again reverses the order
    widget.table.horizontalHeader().sectionClicked.emit(1)
    first = widget.case_order()
    assert [report.case(c).dice for c in first] == sorted(dice)
    widget.table.horizontalHeader().sectionClicked.emit(1)
    assert [report.case(c).dice for c in widget.case_order()] == sorted(dice, reverse=True)


def test_clicking_a_case_loads_layers_on_the_case_affine(explorer, qtbot):
    viewer, widget = explorer
    widget.sort_by("dice")
    case_id = widget.case_order()[2]
    rect = widget.table.visualItemRect(widget.table.item(2, 0))
    qtbot.mouseClick(widget.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert widget.current_case == case_id
    assert [layer.name for layer in viewer.layers] == LAYERS
    report = read_report(widget.model.report.path)
    detail = report.case_detail(case_id)
    affine = np.asarray(detail["affine"])
    for layer in viewer.layers:
        assert layer.data.shape == (24, 24, 24)
        np.testing.assert_allclose(layer.affine.affine_matrix, affine, atol=1e-6)
    assert not np.allclose(affine, np.eye(4))  # the synthetic affine has anisotropic voxels and an offset
    # the raw (un-normalised) image of the dataset is shown
    raw = report.load_case(case_id)["image"].array
    np.testing.assert_array_equal(viewer.layers["image"].data, raw)
    assert raw.mean() > 100
    # error map: codes match prediction vs ground truth, colours are distinct for FP and FN
    pred = viewer.layers["prediction"].data
    gt = viewer.layers["ground truth"].data
    err = viewer.layers["error"].data
    np.testing.assert_array_equal(err == FALSE_POSITIVE, (pred != gt) & (pred != 0))
    np.testing.assert_array_equal(err == FALSE_NEGATIVE, (pred != gt) & (pred == 0))
    colormap = viewer.layers["error"].colormap
    np.testing.assert_allclose(colormap.map(FALSE_POSITIVE), ERROR_COLOURS[FALSE_POSITIVE])
    np.testing.assert_allclose(colormap.map(FALSE_NEGATIVE), ERROR_COLOURS[FALSE_NEGATIVE])
    assert not np.allclose(colormap.map(FALSE_POSITIVE), colormap.map(FALSE_NEGATIVE))
    assert colormap.map(0)[3] == 0  # correct voxels are transparent
    # jumped to the worst region: the centroid of the largest error component, in world mm
    region = detail["worst_region"]
    world = affine[:3, :3] @ np.asarray(region["centroid"]) + affine[:3, 3]
    np.testing.assert_allclose(viewer.dims.point[:3], world, atol=0.8)


def test_plot_panel_shows_the_case_curves_and_its_place_in_the_scatter(explorer):
    _, widget = explorer
    report = widget.model.report
    case_id = report.cases[3].case_id
    widget.select_case(case_id)
    data = widget.plot_data
    detail = report.case_detail(case_id)
    assert data["case_id"] == case_id
    assert data["reliability"] == detail["reliability"] and len(data["reliability"]["counts"]) == 100
    assert sum(data["reliability"]["counts"]) > 0
    assert data["risk_coverage"] == detail["risk_coverage"]
    scatter = data["scatter"]
    assert scatter["case_ids"][scatter["highlight"]] == case_id
    assert scatter["dice"] == [r.dice for r in report.cases]
    assert scatter["case_scores"] == [r.case_score for r in report.cases]
    axes = widget.figure.axes
    assert len(axes) == 3
    highlighted = axes[2].collections[-1].get_offsets()[0]
    np.testing.assert_allclose(highlighted, [report.case(case_id).case_score, report.case(case_id).dice])


def test_compare_view_shows_both_methods_for_the_same_case(explorer, reports):
    viewer, widget = explorer
    widget.open_comparison(reports["mc_dropout"])
    headers = [widget.table.horizontalHeaderItem(c).text() for c in range(widget.table.columnCount())]
    assert "Δ Dice (B-A)" in headers
    a, b = widget.model.report, widget.model.other
    column = headers.index("Δ Dice (B-A)")
    for r, case_id in enumerate(widget.case_order()):
        expected = b.case(case_id).dice - a.case(case_id).dice
        assert float(widget.table.item(r, column).text()) == pytest.approx(expected, abs=6e-4)
    deltas = [b.case(c).dice - a.case(c).dice for c in widget.case_order()]
    assert deltas == sorted(deltas)  # largest loss of B against A first
    case_id = widget.case_order()[0]
    widget.select_case(case_id)
    names = [layer.name for layer in viewer.layers]
    assert names == [f"{n} [A]" for n in LAYERS] + [f"{n} [B]" for n in LAYERS]
    grid = viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid
    assert grid.enabled and grid.stride == 5 and tuple(grid.shape) == (1, 2)
    np.testing.assert_array_equal(viewer.layers["image [A]"].data, viewer.layers["image [B]"].data)
    np.testing.assert_array_equal(viewer.layers["ground truth [A]"].data, viewer.layers["ground truth [B]"].data)
    pred_b = b.load_case(case_id)["prediction"].array
    np.testing.assert_array_equal(viewer.layers["prediction [B]"].data, pred_b)
    # the next click replaces the layers instead of piling them up
    widget.select_case(widget.case_order()[1])
    assert len(viewer.layers) == 10


def test_cli_explore_opens_the_worst_silent_failure(make_napari_viewer, reports):
    from napari_uqseg.cli.explore import open_explorer

    viewer = make_napari_viewer()
    widget = open_explorer(viewer, str(reports["deterministic"]), str(reports["mc_dropout"]))
    assert widget.model.other is not None
    assert widget.current_case == widget.model.sorted_rows("silent_failure")[0]["case_id"]
    assert len(viewer.layers) == 10
