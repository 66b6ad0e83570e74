"""``Volume`` <-> napari layers with the affine kept, and the prediction layers (mask, heatmap, region outline).

napari's data axes are the volume's array axes. An axis-aligned affine (the usual case, flips included)
becomes ``scale``/``translate`` and napari's world coordinates are the volume's RAS millimetres. A rotated,
permuted or sheared (oblique) affine is shown in the scan's own voxel frame, a display transform: ``scale``
(signed spacing) and ``translate`` only, so napari slices exactly along the acquired slices, and the rest
(display mm -> RAS mm) is kept as ``metadata["display_to_ras"]``. :func:`layer_affine` recomposes the true
4x4 from both, so a label layer edited and saved lands on the grid of the image it was drawn on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review_ranking import Region
from napari_uqseg.core.uncertainty import MAP_TITLES
from napari_uqseg.core.volume import Volume

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels, Layer, Shapes

    from napari_uqseg.client.backend import PredictionResult

#: perceptual, dark-at-zero colormap: under additive blending zero uncertainty adds nothing to the image
HEATMAP_COLORMAP = "inferno"
HEATMAP_OPACITY = 0.6
#: fraction of the fitted field of view a focused region's box takes up
FOCUS_FILL = 0.35
#: never zoom in more than this factor over the fitted view (a tiny region would fill the screen with pixels)
MAX_FOCUS_ZOOM = 3.0
_TOL = 1e-6
#: layer metadata key of the display-mm -> RAS-mm matrix of a scan shown in its own voxel frame
DISPLAY_KEY = "display_to_ras"


def layer_kwargs(volume: Volume) -> dict[str, Any]:
    """napari layer keyword arguments that place ``volume`` in world (RAS mm) coordinates.

    Returns
    -------
    dict
        ``scale`` and ``translate`` (length ``ndim``); ``metadata`` with the source affine as a list (for
        provenance) and, for a non-axis-aligned affine, ``display_to_ras`` (4x4 list, read back by
        :func:`layer_affine`).
    """
    n = volume.array.ndim
    linear = volume.affine[:n, :n]
    origin = volume.affine[:n, 3]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing < _TOL):
        raise InputError("affine", f"voxel size is zero along an axis (column norms {spacing.tolist()})")
    direction = linear / spacing
    kwargs: dict[str, Any] = {"metadata": {"affine": volume.affine.tolist()}}
    if np.allclose(direction, np.diag(np.diag(direction)), atol=_TOL):
        kwargs.update(scale=spacing * np.sign(np.diag(direction)), translate=origin)
        return kwargs
    nearest = np.argmax(np.abs(direction), axis=0)  # the RAS axis each voxel axis points along most
    signs = np.sign(direction[nearest, np.arange(n)])
    display = np.eye(4)
    display[np.arange(n), np.arange(n)] = spacing * signs
    display[:n, 3] = origin[nearest]
    kwargs.update(scale=spacing * signs, translate=origin[nearest])
    kwargs["metadata"][DISPLAY_KEY] = (volume.affine @ np.linalg.inv(display)).tolist()
    return kwargs


def layer_affine(layer: Layer) -> np.ndarray:
    """The 4x4 voxel -> world matrix of a 2-D or 3-D layer (scale, translate, rotate, shear and affine composed)."""
    from napari.utils.transforms import Affine

    n = layer.ndim
    if n not in (2, 3):
        raise InputError(layer.name, f"layer has {n} dimensions; only 2-D and 3-D layers map to a volume")
    inner = Affine(scale=layer.scale, translate=layer.translate, rotate=layer.rotate, shear=layer.shear, ndim=n)
    matrix = layer.affine.affine_matrix @ inner.affine_matrix
    out = np.eye(4)
    out[:n, :n], out[:n, 3] = matrix[:n, :n], matrix[:n, n]
    display_to_ras = layer.metadata.get(DISPLAY_KEY)
    return out if display_to_ras is None else np.asarray(display_to_ras, dtype=float) @ out


def layer_to_volume(layer: Layer) -> Volume:
    """The layer's data (numpy) with its :func:`layer_affine`."""
    return Volume(np.asarray(layer.data), layer_affine(layer))


def map_range(map_name: str, n_classes: int) -> tuple[float, float]:
    """Fixed colour range of a map so heatmaps compare across cases: ``(0, log C)`` for entropies, else (0, 0.5)."""
    if map_name == "class_std":
        return 0.0, 0.5  # a probability's std over samples cannot exceed 0.5
    return 0.0, float(math.log(max(n_classes, 2)))


def map_title(map_name: str) -> str:
    """Menu text of a map (``core.uncertainty.MAP_TITLES``; else its name)."""
    return MAP_TITLES.get(map_name, map_name)


@dataclass
class PredictionLayers:
    """The layers one prediction adds to the viewer."""

    mask: Labels
    heatmap: Image
    outline: Shapes


def _replace(viewer: napari.Viewer, name: str) -> None:
    if name in viewer.layers:
        viewer.layers.remove(name)


def add_prediction_layers(
    viewer: napari.Viewer, image_name: str, result: PredictionResult, map_name: str
) -> PredictionLayers:
    """Add (replacing earlier ones) the mask, the uncertainty heatmap and the region-outline layer of an image.

    Parameters
    ----------
    viewer : napari.Viewer
        Target viewer.
    image_name : str
        Name of the image layer predicted; the new layers are named after it.
    result : PredictionResult
        Client result; all its volumes share the image's grid and affine.
    map_name : str
        Map shown first (must be in ``result.prediction.maps``).
    """
    prediction = result.prediction
    place = layer_kwargs(prediction.mask)
    meta = {
        "uqseg": {"image": image_name, "prediction_id": result.id, "model": result.model, "version": result.version}
    }
    names = {k: f"{image_name} {k}" for k in ("mask", "uncertainty", "review region")}
    for name in names.values():
        _replace(viewer, name)
    n_classes = int(prediction.probabilities.array.shape[0])
    heatmap = viewer.add_image(
        prediction.maps[map_name].array,
        name=names["uncertainty"],
        colormap=HEATMAP_COLORMAP,
        blending="additive",
        opacity=HEATMAP_OPACITY,
        contrast_limits=map_range(map_name, n_classes),
        **{**place, "metadata": {**place["metadata"], **meta, "map": map_name}},
    )
    mask = viewer.add_labels(
        np.asarray(prediction.mask.array, dtype=np.uint8).copy(),  # a private copy: label tools edit in place
        name=names["mask"],
        opacity=0.5,
        **{**place, "metadata": {**place["metadata"], **meta}},
    )
    placement = {k: v for k, v in place.items() if k != "metadata"}
    outline = viewer.add_shapes(
        ndim=prediction.mask.array.ndim,
        name=names["review region"],
        edge_color="cyan",
        face_color="transparent",
        edge_width=0.6,
        metadata=meta,
        **placement,
    )
    viewer.layers.selection.active = mask  # ready for napari's label tools
    return PredictionLayers(mask, heatmap, outline)


def show_map(heatmap: Image, volume: Volume, map_name: str, n_classes: int) -> None:
    """Swap the heatmap's data to another map, keeping the user's threshold if it still fits the range."""
    low, high = map_range(map_name, n_classes)
    threshold = min(float(heatmap.contrast_limits[0]), high)
    heatmap.data = volume.array
    heatmap.contrast_limits_range = (low, high)
    heatmap.contrast_limits = (threshold, high)
    heatmap.metadata["map"] = map_name


def set_threshold(heatmap: Image, threshold: float) -> None:
    """Hide uncertainty below ``threshold``: the lower contrast limit maps to black, which additive blending drops."""
    high = float(heatmap.contrast_limits_range[1])
    heatmap.contrast_limits = (min(max(float(threshold), 0.0), high * 0.999), high)


def region_world_box(layer: Layer, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """World centre and world extent (per axis, mm) of a region of ``layer``'s grid."""
    corners = np.array(np.meshgrid(*[(a - 0.5, b - 0.5) for a, b in region.bbox], indexing="ij")).reshape(
        len(region.bbox), -1
    )
    world = np.array([layer.data_to_world(c) for c in corners.T])
    centre = np.asarray(layer.data_to_world(region.centroid), dtype=float)
    return centre, world.max(axis=0) - world.min(axis=0)


def focus_region(viewer: napari.Viewer, layer: Layer, region: Region, axis: int, outline: Shapes | None = None) -> None:
    """Show ``region``: go to its slice, centre the camera on it, zoom so its box fills part of the view, outline it.

    Parameters
    ----------
    viewer : napari.Viewer
    layer : Layer
        A layer on the grid the region was found on (the mask or the heatmap).
    region : Region
        Region in that layer's voxel coordinates.
    axis : int
        Data axis of ``region.slice_index`` (the ranking's axis).
    outline : Shapes, optional
        Layer that receives the region's bounding rectangle on its slice (replacing the previous one).
    """
    centre, extent = region_world_box(layer, region)
    point = list(centre)
    slice_centre = list(region.centroid)
    slice_centre[axis] = float(region.slice_index)
    point[axis] = float(layer.data_to_world(slice_centre)[axis])
    viewer.dims.point = tuple(point)  # world coordinates; napari snaps it to the nearest slice
    viewer.reset_view()  # zoom relative to the fitted view, independent of the canvas size
    displayed = list(viewer.dims.displayed)
    full = np.asarray(viewer.layers.extent.world[1] - viewer.layers.extent.world[0])[displayed]
    box = np.maximum(extent[displayed], 1e-3)
    camera = viewer_camera(viewer)
    camera.center = tuple(centre[displayed])
    factor = min(max(1.0, float(np.min(full * FOCUS_FILL / box))), MAX_FOCUS_ZOOM)
    camera.zoom = camera.zoom * factor
    if outline is not None:
        outline.data = []
        outline.add_rectangles([_slice_rectangle(region, axis)], edge_color="cyan", face_color="transparent")


def _slice_rectangle(region: Region, axis: int) -> np.ndarray:
    """Voxel corners ``(4, ndim)`` of the region's box on its slice (2-D: the box itself)."""
    ndim = len(region.bbox)
    others = [a for a in range(ndim) if a != axis] if ndim == 3 else list(range(ndim))
    (a0, a1), (b0, b1) = (region.bbox[others[0]], region.bbox[others[1]])
    corners = [(a0 - 0.5, b0 - 0.5), (a0 - 0.5, b1 - 0.5), (a1 - 0.5, b1 - 0.5), (a1 - 0.5, b0 - 0.5)]
    rect = np.zeros((4, ndim))
    for row, (a, b) in enumerate(corners):
        rect[row, others[0]], rect[row, others[1]] = a, b
        if ndim == 3:
            rect[row, axis] = region.slice_index
    return rect


def viewer_camera(viewer: napari.Viewer) -> Any:
    """The camera: ``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before."""
    return viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
