"""A fake MRML layer: the parts of ``slicer``/``vtk`` that ``mrml_adapter`` uses, recording every call.

Slicer cannot be installed here, so this is the one stand-in the Slicer tests use. It mimics the semantics that
matter for geometry: volume arrays are ``[k, j, i]`` views of the node's voxels, matrices are RAS, and
``load_volume`` flips LPS-stored files (NRRD ``space: left-posterior-superior``) to RAS as Slicer does on load.
Segment labelmaps keep the geometry of the reference volume they were written with, and reading one back on a
different grid fails instead of silently resampling.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class Matrix4x4:
    """``vtk.vtkMatrix4x4``."""

    def __init__(self) -> None:
        self.m = np.eye(4)

    def GetElement(self, i: int, j: int) -> float:
        return float(self.m[i, j])

    def SetElement(self, i: int, j: int, v: float) -> None:
        self.m[i, j] = v

    def DeepCopy(self, other: Matrix4x4) -> None:
        self.m = other.m.copy()


class Reference:
    """``vtk.reference``: an output argument."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value

    def set(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return str(self.value)


class Node:
    """Common part of MRML nodes: id, name, attributes, parent transform, display node."""

    def __init__(self, scene: Scene, class_name: str, name: str) -> None:
        self.scene, self.class_name, self.name = scene, class_name, name
        self.id = f"{class_name}{len(scene.nodes) + 1}"
        self.attributes: dict[str, str] = {}
        self.transform_id: str | None = None
        self.display: DisplayNode | None = None
        scene.nodes.append(self)

    def GetName(self) -> str:
        return self.name

    def SetName(self, name: str) -> None:
        self.name = name

    def GetID(self) -> str:
        return self.id

    def SetAttribute(self, key: str, value: str) -> None:
        self.scene.log("SetAttribute", self.id, key, value)
        self.attributes[key] = value

    def GetAttribute(self, key: str) -> str | None:
        return self.attributes.get(key)

    def GetTransformNodeID(self) -> str | None:
        return self.transform_id

    def SetAndObserveTransformNodeID(self, node_id: str | None) -> None:
        self.transform_id = node_id

    def CreateDefaultDisplayNodes(self) -> None:
        if self.display is None:
            self.display = DisplayNode(self.scene, self.id)

    def GetDisplayNode(self) -> DisplayNode | None:
        return self.display


class DisplayNode:
    """Records colour table and window/level settings."""

    def __init__(self, scene: Scene, owner: str) -> None:
        self.scene, self.owner = scene, owner
        self.color_node_id = ""
        self.auto_window_level = True
        self.window_min_max = (0.0, 0.0)

    def SetAndObserveColorNodeID(self, node_id: str) -> None:
        self.scene.log("SetAndObserveColorNodeID", self.owner, node_id)
        self.color_node_id = node_id

    def AutoWindowLevelOff(self) -> None:
        self.auto_window_level = False

    def SetWindowLevelMinMax(self, lo: float, hi: float) -> None:
        self.window_min_max = (lo, hi)

    def SetVisibility2DFill(self, visible: bool) -> None:
        self.fill_2d = bool(visible)

    def SetVisibility2DOutline(self, visible: bool) -> None:
        self.outline_2d = bool(visible)


class VolumeNode(Node):
    """``vtkMRMLScalarVolumeNode``: ``array`` is ``[k, j, i]``; ``ijk_to_ras`` is RAS."""

    def __init__(self, scene: Scene, name: str, array_kji: np.ndarray, ijk_to_ras: np.ndarray, cls: str) -> None:
        super().__init__(scene, cls, name)
        self.array = np.array(array_kji)
        self.ijk_to_ras = np.array(ijk_to_ras, dtype=np.float64)

    def GetIJKToRASMatrix(self, matrix: Matrix4x4) -> None:
        matrix.m = self.ijk_to_ras.copy()

    def SetIJKToRASMatrix(self, matrix: Matrix4x4) -> None:
        self.ijk_to_ras = matrix.m.copy()


class Segment:
    """``vtkSegment`` with tags."""

    def __init__(self, name: str, color: tuple[float, ...]) -> None:
        self.name, self.color = name, tuple(color)
        self.tags: dict[str, str] = {}
        self.labelmap: np.ndarray | None = None  # KJI, on the grid of ``labelmap_ijk_to_ras``
        self.labelmap_ijk_to_ras: np.ndarray | None = None

    def GetName(self) -> str:
        return self.name

    def SetTag(self, key: str, value: str) -> None:
        self.tags[key] = str(value)

    def GetTag(self, key: str, out: Reference) -> bool:
        if key not in self.tags:
            return False
        out.set(self.tags[key])
        return True


class Segmentation:
    """``vtkSegmentation``."""

    def __init__(self) -> None:
        self.segments: dict[str, Segment] = {}

    def AddEmptySegment(self, segment_id: str = "", name: str = "", color: tuple[float, ...] = (1, 1, 1)) -> str:
        segment_id = segment_id or f"Segment_{len(self.segments) + 1}"
        self.segments[segment_id] = Segment(name or segment_id, color)
        return segment_id

    def RemoveAllSegments(self) -> None:
        self.segments.clear()

    def GetSegment(self, segment_id: str) -> Segment | None:
        return self.segments.get(segment_id)

    def GetNumberOfSegments(self) -> int:
        return len(self.segments)

    def GetNthSegmentID(self, index: int) -> str:
        return list(self.segments)[index]


class SegmentationNode(Node):
    """``vtkMRMLSegmentationNode``."""

    def __init__(self, scene: Scene, name: str) -> None:
        super().__init__(scene, "vtkMRMLSegmentationNode", name)
        self.segmentation = Segmentation()
        self.reference_geometry: tuple[np.ndarray, tuple[int, ...]] | None = None

    def GetSegmentation(self) -> Segmentation:
        return self.segmentation

    def SetReferenceImageGeometryParameterFromVolumeNode(self, volume: VolumeNode) -> None:
        self.reference_geometry = (volume.ijk_to_ras.copy(), volume.array.shape)


class Scene:
    """``slicer.mrmlScene`` plus the call log the tests assert on."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.calls: list[tuple[Any, ...]] = []

    def log(self, *call: Any) -> None:
        self.calls.append(call)

    def calls_named(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]

    def AddNewNodeByClass(self, cls: str, name: str = "") -> Node:
        self.log("AddNewNodeByClass", cls, name)
        if cls == "vtkMRMLSegmentationNode":
            return SegmentationNode(self, name)
        return VolumeNode(self, name, np.zeros((1, 1, 1), np.float32), np.eye(4), cls)

    def Clear(self) -> None:
        self.nodes.clear()


class SliceNodeClass:
    """``slicer.vtkMRMLSliceNode`` (only the static jump)."""

    CenteredJumpSlice = 1

    def __init__(self, scene: Scene) -> None:
        self._scene = scene

    def JumpAllSlices(self, scene: Scene, r: float, a: float, s: float, mode: int = 0) -> None:
        scene.log("JumpAllSlices", (r, a, s), mode)


def _check_grid(array: np.ndarray, reference: VolumeNode, what: str) -> None:
    if tuple(array.shape) != tuple(reference.array.shape):
        raise RuntimeError(
            f"{what}: array shape {array.shape} is not the reference's KJI shape {reference.array.shape}"
        )


class Util:
    """``slicer.util``: the functions the adapter calls, with Slicer's KJI semantics."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene

    def arrayFromVolume(self, node: VolumeNode) -> np.ndarray:
        return node.array  # a view, as in Slicer

    def arrayFromVTKMatrix(self, matrix: Matrix4x4) -> np.ndarray:
        return matrix.m.copy()

    def vtkMatrixFromArray(self, array: np.ndarray) -> Matrix4x4:
        m = Matrix4x4()
        m.m = np.array(array, dtype=np.float64)
        return m

    def addVolumeFromArray(self, narray, ijkToRAS=None, name=None, nodeClassName=None) -> VolumeNode:
        self.scene.log("addVolumeFromArray", name, nodeClassName, np.array(narray), np.array(ijkToRAS))
        m = np.eye(4) if ijkToRAS is None else np.asarray(ijkToRAS)
        return VolumeNode(self.scene, name or "Volume", narray, m, nodeClassName or "vtkMRMLScalarVolumeNode")

    def updateVolumeFromArray(self, node: VolumeNode, narray: np.ndarray) -> None:
        self.scene.log("updateVolumeFromArray", node.id)
        node.array = np.array(narray)

    def updateSegmentBinaryLabelmapFromArray(self, narray, segmentationNode, segmentId, referenceVolumeNode=None):
        ref = referenceVolumeNode
        _check_grid(np.asarray(narray), ref, "updateSegmentBinaryLabelmapFromArray")
        self.scene.log("updateSegmentBinaryLabelmapFromArray", segmentationNode.id, segmentId, np.array(narray))
        segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
        segment.labelmap = np.array(narray, dtype=np.uint8)
        segment.labelmap_ijk_to_ras = ref.ijk_to_ras.copy()

    def arrayFromSegmentBinaryLabelmap(self, segmentationNode, segmentId, referenceVolumeNode=None) -> np.ndarray:
        segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
        ref = referenceVolumeNode
        if segment.labelmap is None:
            return np.zeros(ref.array.shape, np.uint8)
        if not np.allclose(segment.labelmap_ijk_to_ras, ref.ijk_to_ras) or segment.labelmap.shape != ref.array.shape:
            raise RuntimeError("fake MRML does not resample: segment and reference grids differ")
        return segment.labelmap.copy()

    def setSliceViewerLayers(self, **kwargs: Any) -> None:
        self.scene.log("setSliceViewerLayers", kwargs)

    def loadVolume(self, path: str | Path) -> VolumeNode:
        """Load NIfTI (already RAS) or raw NRRD (LPS or RAS) the way Slicer does: RAS matrix, KJI array."""
        path = Path(path)
        name = path.name.split(".")[0]
        if path.name.endswith((".nii", ".nii.gz")):
            img = nib.load(str(path))
            data = np.asarray(img.dataobj)
            return VolumeNode(self.scene, name, data.transpose(2, 1, 0), img.affine, "vtkMRMLScalarVolumeNode")
        array_kji, ijk_to_world, space = read_raw_nrrd(path)
        ijk_to_ras = LPS_TO_RAS @ ijk_to_world if space == "left-posterior-superior" else ijk_to_world
        return VolumeNode(self.scene, name, array_kji, ijk_to_ras, "vtkMRMLScalarVolumeNode")


def _vector(text: str) -> list[float]:
    return [float(v) for v in text.strip().strip("()").split(",")]


def write_raw_nrrd(path: Path, array_ijk: np.ndarray, ijk_to_world: np.ndarray, space: str) -> Path:
    """A minimal raw float32 NRRD: ``sizes`` I J K, i fastest on disk (as NRRD and VTK store voxels)."""
    m = np.asarray(ijk_to_world, dtype=np.float64)
    directions = " ".join("(" + ",".join(f"{v:.17g}" for v in m[:3, c]) + ")" for c in range(3))
    header = (
        "NRRD0004\ntype: float\ndimension: 3\n"
        f"space: {space}\nsizes: {' '.join(str(s) for s in array_ijk.shape)}\n"
        f"space directions: {directions}\nkinds: domain domain domain\nendian: little\nencoding: raw\n"
        f"space origin: ({','.join(f'{v:.17g}' for v in m[:3, 3])})\n\n"
    )
    path.write_bytes(header.encode() + np.asarray(array_ijk, dtype="<f4").tobytes(order="F"))
    return path


def read_raw_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Inverse of :func:`write_raw_nrrd`: ``[k, j, i]`` array, IJK-to-world matrix, space name."""
    raw = path.read_bytes()
    head, body = raw.split(b"\n\n", 1)
    fields = dict(line.split(": ", 1) for line in head.decode().splitlines()[1:])
    sizes = [int(s) for s in fields["sizes"].split()]
    m = np.eye(4)
    for c, vec in enumerate(fields["space directions"].split()):
        m[:3, c] = _vector(vec)
    m[:3, 3] = _vector(fields["space origin"])
    array_kji = np.frombuffer(body, dtype="<f4").reshape(sizes[::-1]).copy()  # i fastest -> C order [k, j, i]
    return array_kji, m, fields["space"]


def install(monkeypatch: Any) -> Scene:
    """Put fake ``slicer`` and ``vtk`` modules in ``sys.modules``; returns the scene (with its call log)."""
    scene = Scene()
    slicer = types.ModuleType("slicer")
    slicer.mrmlScene = scene
    slicer.util = Util(scene)
    slicer.vtkMRMLSliceNode = SliceNodeClass(scene)
    vtk = types.ModuleType("vtk")
    vtk.vtkMatrix4x4 = Matrix4x4
    vtk.reference = Reference
    monkeypatch.setitem(__import__("sys").modules, "slicer", slicer)
    monkeypatch.setitem(__import__("sys").modules, "vtk", vtk)
    return scene
