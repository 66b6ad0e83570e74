"""``ResultView`` on the fake MRML layer: segments per class, heatmap, review states in segment status tags."""

from __future__ import annotations

import json

import numpy as np
import pytest
from UQSegLib import review_table
from UQSegLib.logic import SegmentationResult

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review import build_review

SHAPE_KJI = (6, 10, 8)
MATRIX = np.array([[-1.2, 0, 0, 40.0], [0, -0.9, 0, 25.0], [0, 0, 2.0, -7.0], [0, 0, 0, 1]])


def make_result() -> SegmentationResult:
    """Two classes, each with one uncertain spot; entropy ranks class 2's spot first, the other map class 1's."""
    mask = np.zeros(SHAPE_KJI, np.uint8)
    mask[1:5, 1:5, 1:4] = 1
    mask[1:5, 5:9, 4:7] = 2
    entropy = np.zeros(SHAPE_KJI, np.float32)
    entropy[2:4, 6:8, 5:7] = 1.0  # 8 voxels in class 2
    entropy[2:3, 2:3, 2:4] = 0.5  # 2 voxels in class 1
    other = np.zeros(SHAPE_KJI, np.float32)
    other[1:4, 1:4, 1:3] = 0.9  # 18 voxels in class 1
    ranking = build_review(entropy.transpose(2, 1, 0), mask.transpose(2, 1, 0), axis=2, min_voxels=1, threshold=0.1)
    return SegmentationResult(
        prediction_id="pred-1",
        model="tiny",
        version="v1",
        method="mc_dropout",
        ijk_to_ras=MATRIX,
        mask_kji=mask,
        maps_kji={"entropy": entropy, "mutual_information": other},
        class_names={1: "left", 2: "right"},
        ranking=ranking,
    )


@pytest.fixture()
def shown(fake_slicer):
    scene, adapter = fake_slicer
    import slicer

    node = slicer.util.addVolumeFromArray(np.ones(SHAPE_KJI, np.float32), ijkToRAS=MATRIX, name="scan")
    view = adapter.ResultView()
    view.show(make_result(), node, opacity=0.3)
    return scene, adapter, view, node


def status(view, label: int) -> str:
    return view.segmentation_node.GetSegmentation().GetSegment(view.segment_ids[label]).tags["Segmentation.Status"]


def test_one_segment_per_class_and_a_heatmap(shown):
    scene, _, view, node = shown
    segmentation = view.segmentation_node.GetSegmentation()
    assert [segmentation.GetSegment(view.segment_ids[k]).GetName() for k in (1, 2)] == ["left", "right"]
    np.testing.assert_array_equal(
        segmentation.GetSegment(view.segment_ids[2]).labelmap, view.review.result.mask_kji == 2
    )
    assert view.heat_node.GetName() == "scan entropy"
    assert scene.calls_named("setSliceViewerLayers")[-1][1]["foregroundOpacity"] == pytest.approx(0.3)
    assert [r.label for r in view.review.rows()] == [2, 1]  # most uncertain first
    assert {status(view, 1), status(view, 2)} == {review_table.STATUS_NOT_STARTED}


def test_review_states_go_to_segment_status_and_survive_a_reload(shown):
    _, adapter, view, node = shown
    first, second = view.review.rows()
    view.set_region_state(first.region_id, "flagged")
    assert status(view, 2) == "flagged" and status(view, 1) == "notstarted"
    view.set_region_state(second.region_id, "done")
    assert status(view, 1) == "completed"
    saved = json.loads(view.segmentation_node.GetAttribute(review_table.REGION_STATES_ATTRIBUTE))
    assert saved == {"map": "entropy", "states": {str(first.region_id): "flagged", str(second.region_id): "done"}}

    # showing the same prediction again into the same node restores the states from the node attribute
    view.show(make_result(), node)
    assert [r.state for r in view.review.rows()] == ["flagged", "done"]
    assert view.review.progress_text() == "2 of 2 regions reviewed"


def test_switching_map_reranks_and_reuses_the_heat_node(shown):
    scene, _, view, _ = shown
    heat = view.heat_node
    view.show_map("mutual_information", 0.5)
    assert view.heat_node is heat and heat.GetName() == "scan mutual_information"
    assert view.review.ranking.map_name == "mutual_information"
    assert [r.label for r in view.review.rows()] == [1]
    assert len(scene.calls_named("addVolumeFromArray")) == 2  # the scan + one heat node, then updated in place
    np.testing.assert_array_equal(heat.array, view.review.result.maps_kji["mutual_information"])
    with pytest.raises(InputError, match="no uncertainty map 'variance'"):
        view.show_map("variance", 0.5)


def test_jump_to_region_and_correction_arrays(shown):
    scene, _, view, node = shown
    row = view.review.rows()[0]
    centre = view.jump_to_region(row.region_id)
    assert scene.calls_named("JumpAllSlices")[-1][1] == centre
    ijk = np.linalg.solve(MATRIX, [*centre, 1.0])[:3]
    np.testing.assert_allclose(ijk, [5.5, 6.5, 2.5])  # centre of the 2x2x2 class-2 spot, in (i, j, k)
    with pytest.raises(InputError, match="no region 99"):
        view.jump_to_region(99)
    label, matrix = view.correction()
    np.testing.assert_array_equal(label, view.review.result.mask_kji)
    np.testing.assert_allclose(matrix, MATRIX)
