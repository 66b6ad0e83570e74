"""The only file of UQSegLib that touches Slicer: numpy arrays in and out of MRML nodes.

Everything else in UQSegLib is pure and tested outside Slicer; this file is tested there with a fake MRML layer
that records calls. Arrays crossing this boundary are in Slicer's KJI order; geometry conversion lives in
``geometry`` and is applied here only through ``volume_from_kji``.
"""

from __future__ import annotations

import numpy as np
import slicer
import vtk

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume

from .calibrated import TABLE_COLUMNS, volume_table_rows
from .geometry import volume_from_kji
from .logic import CaseReview, SegmentationResult
from .review_table import CLASS_TAG, REGION_STATES_ATTRIBUTE, STATUS_NOT_STARTED, STATUS_TAG

#: built-in perceptual colour table for the uncertainty heatmap (Slicer ships ``Inferno.txt``)
HEAT_COLOR_NODE_ID = "vtkMRMLColorTableNodeFileInferno.txt"
#: segment colours (RGB 0-1) for class 1, 2, ... (cycled)
CLASS_COLORS = ((0.90, 0.35, 0.25), (0.30, 0.65, 0.95), (0.40, 0.85, 0.40), (0.95, 0.80, 0.25), (0.75, 0.45, 0.90))


def ijk_to_ras_of(node: object) -> np.ndarray:
    """The ``(4, 4)`` IJK-to-RAS matrix of a volume node (RAS even for LPS files: Slicer flips on load)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array(slicer.util.arrayFromVTKMatrix(matrix), dtype=np.float64)


def image_of(node: object) -> tuple[np.ndarray, np.ndarray]:
    """``(K, J, I)`` voxel copy and IJK-to-RAS matrix of a scalar volume node.

    Raises
    ------
    InputError
        No node selected, or no image data in it.
    """
    if node is None:
        raise InputError("input volume", "no volume selected")
    array = slicer.util.arrayFromVolume(node)
    if array is None:
        raise InputError(node.GetName(), "volume has no image data")
    return np.array(array, copy=True), ijk_to_ras_of(node)


def volume_of(node: object) -> Volume:
    """The node as an IJK ``Volume`` with its RAS affine (what the server receives)."""
    array, matrix = image_of(node)
    return volume_from_kji(array, matrix, node.GetName())


def _follow_transform(node: object, reference: object) -> None:
    # results share the input's parent transform so they stay aligned when the input is moved
    node.SetAndObserveTransformNodeID(reference.GetTransformNodeID())


def show_segmentation(
    mask_kji: np.ndarray, class_names: dict[int, str], reference: object, name: str, node: object | None = None
) -> tuple[object, dict[int, str]]:
    """Put a label array into a segmentation node, one segment per class, on ``reference``'s grid.

    Parameters
    ----------
    mask_kji : np.ndarray
        ``(K, J, I)`` labels on the grid of ``reference``.
    class_names : dict of int to str
        Foreground label -> segment name.
    reference : vtkMRMLScalarVolumeNode
        The input volume (geometry source).
    name : str
        Node name.
    node : vtkMRMLSegmentationNode, optional
        Reuse this node (its segments are replaced).

    Returns
    -------
    (vtkMRMLSegmentationNode, dict of int to str)
        The node and class label -> segment id.
    """
    if node is None:
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    _follow_transform(node, reference)
    segmentation = node.GetSegmentation()
    segmentation.RemoveAllSegments()
    segment_ids = {}
    for index, (label, segment_name) in enumerate(sorted(class_names.items())):
        segment_id = segmentation.AddEmptySegment(
            f"uqseg_{label}", segment_name, CLASS_COLORS[index % len(CLASS_COLORS)]
        )
        slicer.util.updateSegmentBinaryLabelmapFromArray(
            (mask_kji == label).astype(np.uint8), node, segment_id, reference
        )
        segment = segmentation.GetSegment(segment_id)
        segment.SetTag(CLASS_TAG, str(label))
        segment.SetTag(STATUS_TAG, STATUS_NOT_STARTED)
        segment_ids[label] = segment_id
    return node, segment_ids


def show_uncertainty(
    map_kji: np.ndarray, reference: object, name: str, opacity: float = 0.5, node: object | None = None
) -> object:
    """Show an uncertainty map as a heat-coloured scalar volume in the foreground of the slice views.

    Parameters
    ----------
    map_kji : np.ndarray
        ``(K, J, I)`` float uncertainty on the grid of ``reference``.
    reference : vtkMRMLScalarVolumeNode
        The input volume; stays the background layer.
    opacity : float
        Foreground opacity in [0, 1].
    node : vtkMRMLScalarVolumeNode, optional
        Reuse this node (its voxels are replaced).
    """
    matrix = ijk_to_ras_of(reference)
    values = np.ascontiguousarray(map_kji, dtype=np.float32)
    if node is None:
        node = slicer.util.addVolumeFromArray(
            values, ijkToRAS=matrix, name=name, nodeClassName="vtkMRMLScalarVolumeNode"
        )
    else:
        slicer.util.updateVolumeFromArray(node, values)
        node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(matrix))
    _follow_transform(node, reference)
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(HEAT_COLOR_NODE_ID)
    display.AutoWindowLevelOff()
    top = float(values.max()) if values.size else 1.0
    display.SetWindowLevelMinMax(0.0, top if top > 0 else 1.0)  # 0 = certain maps to the dark end
    slicer.util.setSliceViewerLayers(background=reference, foreground=node, foregroundOpacity=float(opacity))
    return node


def set_foreground_opacity(opacity: float) -> None:
    """Opacity of the heatmap layer in every slice view."""
    slicer.util.setSliceViewerLayers(foregroundOpacity=float(opacity))


def jump_to(ras: tuple[float, float, float]) -> None:
    """Centre every slice view on a RAS point (a review region's centre)."""
    slicer.vtkMRMLSliceNode.JumpAllSlices(
        slicer.mrmlScene, float(ras[0]), float(ras[1]), float(ras[2]), slicer.vtkMRMLSliceNode.CenteredJumpSlice
    )


def set_segment_statuses(node: object, segment_ids: dict[int, str], statuses: dict[int, str], states_json: str) -> None:
    """Write each segment's review status tag and the per-region states (JSON) on the segmentation node."""
    segmentation = node.GetSegmentation()
    for label, status in statuses.items():
        segment = segmentation.GetSegment(segment_ids.get(label, ""))
        if segment is not None:
            segment.SetTag(STATUS_TAG, status)
    node.SetAttribute(REGION_STATES_ATTRIBUTE, states_json)


def saved_states(node: object | None) -> str | None:
    """Region states stored on a segmentation node by :func:`set_segment_statuses`, if any."""
    return None if node is None else node.GetAttribute(REGION_STATES_ATTRIBUTE)


def _tag(segment: object, name: str) -> str:
    # vtkSegment.GetTag fills an output argument (C++ std::string&) and returns whether the tag exists
    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else ""


def label_of(node: object, reference: object) -> np.ndarray:
    """The (edited) segmentation as a ``(K, J, I)`` uint8 label array on ``reference``'s grid.

    Segments made by :func:`show_segmentation` keep their class label (``UQSeg.ClassLabel`` tag); segments the
    user added are ignored, so renaming or recolouring never changes a label.

    Raises
    ------
    InputError
        The node has no segment created by this module.
    """
    segmentation = node.GetSegmentation()
    shape = slicer.util.arrayFromVolume(reference).shape
    label = np.zeros(shape, dtype=np.uint8)
    found = 0
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        tag = _tag(segmentation.GetSegment(segment_id), CLASS_TAG)
        if not tag:
            continue
        found += 1
        binary = slicer.util.arrayFromSegmentBinaryLabelmap(node, segment_id, reference)
        label[np.asarray(binary) > 0] = int(tag)
    if not found:
        raise InputError(node.GetName(), "has no segment created by UQSeg; run Segment first")
    return label


def show_contours(result: SegmentationResult, reference: object, node: object | None = None) -> object | None:
    """Outer and inner conformal contours as outline-only segments ("outer <name>", "inner <name>").

    Returns the segmentation node (``None`` and nothing added when the model version is not calibrated).
    """
    contours = result.calibrated.contours_kji if result.calibrated else {}
    if not contours:
        if node is not None:  # an earlier calibrated result's contours must not outlive it
            node.GetSegmentation().RemoveAllSegments()
        return node
    if node is None:
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{reference.GetName()} UQSeg contours")
        node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    _follow_transform(node, reference)
    segmentation = node.GetSegmentation()
    segmentation.RemoveAllSegments()
    for kind, labels in contours.items():
        for index, (label, name) in enumerate(sorted(result.class_names.items())):
            segment_id = segmentation.AddEmptySegment(
                f"uqseg_{kind}_{label}", f"{kind} {name}", CLASS_COLORS[index % len(CLASS_COLORS)]
            )
            slicer.util.updateSegmentBinaryLabelmapFromArray(
                (labels == label).astype(np.uint8), node, segment_id, reference
            )
    display = node.GetDisplayNode()
    display.SetVisibility2DFill(False)  # contours only: the mask's own segments stay readable inside
    display.SetVisibility2DOutline(True)
    node.SetAttribute("UQSeg.Risk", result.calibrated.risk_text)
    return node


def tag_volumes(node: object, segment_ids: dict[int, str], result: SegmentationResult) -> None:
    """Each segment's volume and calibrated intervals as segment tags (``UQSeg.Volume [mL]``, ``UQSeg.90% ...``)."""
    if result.calibrated is None:
        return
    rows = {row[0]: row for row in volume_table_rows(result.calibrated, result.class_names)}
    for label, segment_id in segment_ids.items():
        row = rows.get(result.class_names.get(label, ""))
        if row is None:
            continue
        segment = node.GetSegmentation().GetSegment(segment_id)
        for column, value in zip(TABLE_COLUMNS[1:], row[1:], strict=True):
            segment.SetTag(f"UQSeg.{column}", value)


class ResultView:
    """The scene side of one result: its segmentation and heatmap nodes and its review (main thread only)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the nodes (on scene close or a new input volume); they stay in the scene."""
        self.review: CaseReview | None = None
        self.input_node: object | None = None
        self.segmentation_node: object | None = None
        self.segment_ids: dict[int, str] = {}
        self.heat_node: object | None = None
        self.contour_node: object | None = None

    def show(self, result: SegmentationResult, input_node: object, opacity: float = 0.5) -> None:
        """Segmentation node (one segment per class) plus the ranked map as a heatmap over ``input_node``."""
        if input_node is not self.input_node:
            self.clear()
        self.input_node = input_node
        self.segmentation_node, self.segment_ids = show_segmentation(
            result.mask_kji, result.class_names, input_node, f"{input_node.GetName()} UQSeg", self.segmentation_node
        )
        tag_volumes(self.segmentation_node, self.segment_ids, result)
        self.contour_node = show_contours(result, input_node, self.contour_node)
        self.review = CaseReview(result, saved_states(self.segmentation_node))
        self.show_map(self.review.ranking.map_name, opacity)

    def show_map(self, map_name: str, opacity: float) -> None:
        """Show ``map_name`` as the heatmap and rank the review queue by it."""
        self.review.rerank(map_name)
        name = f"{self.input_node.GetName()} {map_name}"
        heat = self.review.result.maps_kji[map_name]
        self.heat_node = show_uncertainty(heat, self.input_node, name, opacity, self.heat_node)
        self.heat_node.SetName(name)
        self.write_statuses()

    def write_statuses(self) -> None:
        """Segment status tags and saved region states from the review."""
        set_segment_statuses(
            self.segmentation_node, self.segment_ids, self.review.statuses(), self.review.encoded_states()
        )

    def set_region_state(self, region_id: int, state: str) -> None:
        """Mark a region and update the segment status tags."""
        self.review.set_state(region_id, state)
        self.write_statuses()

    def jump_to_region(self, region_id: int) -> tuple[float, float, float]:
        """Centre the slice views on a region; returns its RAS centre."""
        row = next((r for r in self.review.rows() if r.region_id == region_id), None)
        if row is None:
            raise InputError("region", f"no region {region_id} in the review table")
        jump_to(row.center_ras)
        return row.center_ras

    def correction(self) -> tuple[np.ndarray, np.ndarray]:
        """The edited segmentation as a ``(K, J, I)`` label array and the input's IJK-to-RAS matrix."""
        return label_of(self.segmentation_node, self.input_node), ijk_to_ras_of(self.input_node)


def show_worklist_case(view: ResultView, case: str, image_kji: np.ndarray, result: SegmentationResult) -> object:
    """Load a worklist case's image as a volume node named after the case and show its result over it.

    Returns the new volume node (the input of ``view`` from now on).
    """
    node = slicer.util.addVolumeFromArray(image_kji, ijkToRAS=result.ijk_to_ras, name=case)
    slicer.util.setSliceViewerLayers(background=node)
    view.show(result, node)
    return node
