"""The Slicer module's worklist: table rows sorted by score, and a clicked case loaded into the (fake) scene."""

from __future__ import annotations

import numpy as np
import pytest
from UQSegLib import worklist_table

from napari_uqseg.client.worklist_source import LocalWorklist
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import load_image
from napari_uqseg.core.sample_data import write_synthetic_dataset
from napari_uqseg.engine.triage import triage


@pytest.fixture(scope="module")
def study(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("slicer_worklist")
    data = write_synthetic_dataset(root / "data", n_cases=4)
    triage(tiny_models["tiny_mcd"], data, root / "study", workers=1)
    return root / "study"


def test_table_rows_are_the_worklist_most_uncertain_first(study):
    source = LocalWorklist(study)
    rows = worklist_table.table_rows(source.rows)
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    scores = [float(r[2]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert [r[1] for r in rows] == [r.case for r in source.rows]
    assert len(rows[0]) == len(worklist_table.WORKLIST_COLUMNS)


def test_clicking_a_case_loads_its_image_segments_and_heatmap(study, fake_slicer):
    scene, adapter = fake_slicer
    source = LocalWorklist(study)
    row = source.rows[1]
    image_kji, result = worklist_table.open_case(source, row.case)
    view = adapter.ResultView()
    node = adapter.show_worklist_case(view, row.case, image_kji, result)

    original = load_image(row.image)
    assert node.GetName() == row.case
    np.testing.assert_array_equal(node.array, original.array.transpose(2, 1, 0))  # Slicer's KJI order
    np.testing.assert_allclose(node.ijk_to_ras, original.affine)
    assert view.input_node is node and view.review.ranking.case_score == pytest.approx(row.score)
    segments = view.segmentation_node.GetSegmentation()
    assert segments.GetNumberOfSegments() == len(result.class_names) >= 1
    assert view.heat_node.GetName() == f"{row.case} {view.review.ranking.map_name}"
    assert set(result.maps_kji) == set(row.maps)
    assert scene.calls_named("setSliceViewerLayers")


def test_a_case_not_in_the_worklist_is_a_clear_error(study):
    with pytest.raises(InputError, match="not in the worklist"):
        worklist_table.open_case(LocalWorklist(study), "nobody")


def test_table_shows_volumes_with_intervals_of_a_calibrated_model(tiny_models, tmp_path, study):
    data = write_synthetic_dataset(tmp_path / "data", n_cases=2)
    triage(tiny_models["tiny_det"], data, tmp_path / "study", workers=1)  # tiny_det is calibrated
    source = LocalWorklist(tmp_path / "study")
    column = worklist_table.WORKLIST_COLUMNS.index("Volumes, 90% interval [mL]")
    for cells, row in zip(worklist_table.table_rows(source.rows), source.rows, strict=True):
        for name, volume in row.volumes_ml.items():
            lo, hi = row.volume_intervals_ml[name]["0.9"]
            assert f"{name} {volume:.2f} mL (90 %: {lo:.2f}-{hi:.2f})" in cells[column]
    uncalibrated = worklist_table.table_rows(LocalWorklist(study).rows)  # tiny_mcd: not calibrated
    assert all(" mL" in r[column] and "90 %" not in r[column] for r in uncalibrated)
