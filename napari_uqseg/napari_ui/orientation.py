"""Show scans the way a clinician reads them: slide through the acquisition slices, anatomical directions labelled.

A display transform only: layers keep their data in file voxel order (``layers.layer_kwargs`` places an
axis-aligned scan in RAS mm, an oblique one in its own voxel frame with the rest kept for
``layers.layer_affine``), so masks, maps, review jumps and corrections stay on the same voxels. What changes
is the viewer: which axis the slider walks (``dims.order``), how the two shown axes are flipped (camera
``orientation2d``; radiological convention: patient right on screen left, anterior or superior up), the
axis names (``L->R``, ``P->A``, ``I->S``: the anatomical direction each napari axis increases towards) and
an overlay naming the screen edges (e.g. ``top A | bottom P | left R | right L | slider I->S``).

The slider axis is the acquisition slice axis: the coarsest voxel axis of an anisotropic (thin-slab) scan,
else the voxel axis pointing closest to head-foot, so an isotropic volume opens axial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.napari_ui.layers import layer_affine, viewer_camera

if TYPE_CHECKING:
    import napari

#: RAS axes: (name, letter at the low end, letter at the high end)
WORLD_AXES = (("L->R", "L", "R"), ("P->A", "P", "A"), ("I->S", "I", "S"))
#: spacing ratio above which a scan counts as a thin-slab acquisition (slices much thicker than pixels)
SLAB_RATIO = 1.5


def slice_axis(affine: np.ndarray) -> int:
    """Voxel axis to slide through: the coarsest of an anisotropic scan, else the one closest to head-foot.

    Parameters
    ----------
    affine : np.ndarray
        ``(4, 4)`` voxel -> RAS mm matrix of a 3-D volume.
    """
    linear = np.asarray(affine, dtype=float)[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    if spacing.max() > SLAB_RATIO * spacing.min():
        return int(np.argmax(spacing))
    return int(np.argmax(np.abs(linear[2] / spacing)))


def anatomical_axes(affine: np.ndarray) -> list[int]:
    """For each voxel axis, the RAS axis (0 x, 1 y, 2 z) it points along most."""
    return [int(i) for i in np.argmax(np.abs(np.asarray(affine, dtype=float)[:3, :3]), axis=0)]


def view_order(affine: np.ndarray) -> tuple[int, int, int]:
    """``dims.order`` for a 3-D scan: ``(slider, rows, columns)``; rows the more head-foot / front-back axis."""
    slider = slice_axis(affine)
    anatomy = anatomical_axes(affine)
    cols, rows = sorted((a for a in range(3) if a != slider), key=lambda a: anatomy[a])
    return slider, rows, cols


def screen_directions(affine: np.ndarray) -> dict[str, str]:
    """Anatomical letters at the screen edges, and the slider's direction, for the view of :func:`view_order`.

    Each napari axis increases towards the high end of its anatomical axis (``layers.layer_kwargs`` signs);
    rows increase upwards and columns leftwards (radiological).
    """
    slider, rows, cols = view_order(affine)
    anatomy = anatomical_axes(affine)
    return {
        "top": WORLD_AXES[anatomy[rows]][2],
        "bottom": WORLD_AXES[anatomy[rows]][1],
        "left": WORLD_AXES[anatomy[cols]][2],
        "right": WORLD_AXES[anatomy[cols]][1],
        "slider": WORLD_AXES[anatomy[slider]][0],
    }


def show_clinical_view(viewer: napari.Viewer, layer: Any) -> dict[str, str] | None:
    """Set the 2-D view for a 3-D image ``layer``: slider on its slice axis, radiological flips, direction labels.

    Returns the screen directions (see :func:`screen_directions`), or ``None`` for a layer that is not 3-D.
    """
    if layer.ndim != 3 or viewer.dims.ndim != 3:
        return None
    affine = layer_affine(layer)
    slider = view_order(affine)[0]
    viewer.dims.ndisplay = 2
    viewer.dims.axis_labels = tuple(WORLD_AXES[a][0] for a in anatomical_axes(affine))
    viewer.dims.order = view_order(affine)
    viewer_camera(viewer).orientation2d = ("up", "left")  # rows increase upwards, columns leftwards
    directions = screen_directions(affine)
    overlay = text_overlay(viewer)
    overlay.text = " | ".join(f"{edge} {directions[edge]}" for edge in ("top", "bottom", "left", "right", "slider"))
    overlay.visible = True
    viewer.dims.set_point(slider, float(np.mean(viewer.layers.extent.world[:, slider])))
    viewer.reset_view()
    return directions


def text_overlay(viewer: napari.Viewer) -> Any:
    """The viewer's text overlay (``viewer.canvas.overlays.text`` since napari 0.9, ``text_overlay`` before)."""
    return viewer.canvas.overlays.text if hasattr(viewer, "canvas") else viewer.text_overlay


def _scans(viewer: napari.Viewer) -> list[Any]:
    """Image layers our readers opened (they carry the source ``affine``), not our prediction layers."""
    from napari.layers import Image

    return [x for x in viewer.layers if isinstance(x, Image) and "affine" in x.metadata and "uqseg" not in x.metadata]


def follow_new_images(viewer: napari.Viewer) -> None:
    """Apply :func:`show_clinical_view` to a scan opened before the plugin and to each scan added as the only one,
    leaving the view alone while a user works on an already oriented scan."""

    def inserted(event: Any) -> None:
        if _scans(viewer) == [event.value]:
            show_clinical_view(viewer, event.value)

    viewer.layers.events.inserted.connect(inserted)
    if len(scans := _scans(viewer)) == 1:
        show_clinical_view(viewer, scans[0])


def review_axis(volume_affine: np.ndarray, ndim: int) -> int:
    """Voxel axis the review ranking's slices follow: the slider's (:func:`slice_axis`) for 3-D, else 0."""
    return slice_axis(volume_affine) if ndim == 3 else 0
