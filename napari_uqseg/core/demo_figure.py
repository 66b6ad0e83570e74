"""The demo's one figure: where the model is wrong next to where it is unsure, with the review figures.

Four panels on one axial slice (radiological: patient right on the left, anterior up) through the top review
region that lies inside the brain: the held-back scan with the predicted mask, the uncertainty map with the
top review-region boxes, the true errors (prediction differs from the reference) with the same boxes, and the
error rate of the voxels the top regions send a reader to against random regions of the same shapes, the
whole reviewed area and the best possible. matplotlib's object API only (no ``pyplot``), as in
``core.report_plots``.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy import ndimage

from napari_uqseg.core.nifti_io import atomic_write_bytes
from napari_uqseg.core.review_ranking import Region, ReviewRanking

#: mask colours per class index 1, 2, ... (grey matter, white matter for the starter model)
CLASS_COLOURS = ("#1b9e77", "#7570b3", "#e7298a", "#66a61e")


@dataclass
class DemoLayers:
    """The volumes the figure draws, all ``(X, Y, Z)`` in RAS voxel order.

    Attributes
    ----------
    image : np.ndarray
        The scan (float).
    mask, reference : np.ndarray
        Predicted and reference labels (int, 0 = background).
    uncertainty : np.ndarray
        The map the ranking was built on.
    """

    image: np.ndarray
    mask: np.ndarray
    reference: np.ndarray
    uncertainty: np.ndarray

    @property
    def errors(self) -> np.ndarray:
        """Bool ``(X, Y, Z)``: the predicted label differs from the reference."""
        return np.asarray(self.mask) != np.asarray(self.reference)


def axial_view(volume: np.ndarray, k: int) -> np.ndarray:
    """Slice ``k`` of an ``(X, Y, Z)`` RAS-ordered volume as a 2-D array to draw with ``origin="lower"``."""
    return volume[::-1, :, k].T


def brain_region(reference: np.ndarray, closing: int = 3) -> np.ndarray:
    """The organ's extent: reference foreground, closed by ``closing`` voxels and hole-filled (bool, same shape).

    Sulci and ventricles (label 0 inside the brain) count as inside; the air around the head does not.
    """
    tissue = np.asarray(reference) != 0
    if closing > 0:
        tissue = ndimage.binary_closing(np.pad(tissue, closing), iterations=closing)[(slice(closing, -closing),) * 3]
    return ndimage.binary_fill_holes(tissue)


def figure_region(ranking: ReviewRanking, inside: np.ndarray) -> int | None:
    """Index in ``ranking.regions`` of the best-ranked region whose centroid voxel lies in ``inside`` (bool).

    Returns None when no region does.
    """
    limit = np.array(inside.shape) - 1
    for index, region in enumerate(ranking.regions):
        voxel = tuple(np.clip(np.floor(np.array(region.centroid) + 0.5).astype(int), 0, limit))
        if inside[voxel]:
            return index
    return None


def _boxes(ax: Any, regions: list[Region], shape: tuple[int, ...], k: int) -> None:
    """The regions' bounding boxes: solid where they cross slice ``k``, dotted where they lie above or below."""
    for region in regions:
        (x0, x1), (y0, y1), (z0, z1) = region.bbox
        inside = z0 <= k < z1
        rect = Rectangle(
            (shape[0] - x1 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.4, ls="-" if inside else ":"
        )
        rect.set_edgecolor("cyan")
        ax.add_patch(rect)
        ax.text(shape[0] - x1, y1 + 0.5, str(region.id), color="cyan", fontsize=8)


def _image_panels(axes: Any, fig: Figure, layers: DemoLayers, ranking: ReviewRanking, shown: Region, top: int) -> None:
    """Scan + mask, uncertainty + boxes, errors + boxes on the axial slice through region ``shown``."""
    k = shown.slice_index
    regions = ranking.regions[:top] + ([shown] if shown.id > top else [])
    image = axial_view(layers.image, k)
    for ax in axes:
        ax.imshow(image, cmap="gray", origin="lower")
        ax.set_xticks([])
        ax.set_yticks([])
    mask = axial_view(layers.mask, k)
    colour_index = np.ma.masked_equal(np.where(mask > 0, (mask - 1) % len(CLASS_COLOURS) + 1, 0), 0)
    vmax = len(CLASS_COLOURS) + 0.5
    axes[0].imshow(colour_index, cmap=ListedColormap(CLASS_COLOURS), vmin=0.5, vmax=vmax, alpha=0.45, origin="lower")
    through = f" through region {shown.id}" if shown.id else ""
    axes[0].set_title(f"held-back scan + predicted mask\n(axial slice {k}{through}; R on the left)")
    heat = axes[1].imshow(axial_view(layers.uncertainty, k), cmap="inferno", origin="lower", alpha=0.8)
    fig.colorbar(heat, ax=axes[1], fraction=0.04)
    axes[1].set_title(f"uncertainty ({ranking.map_name})\n+ top {top} review regions (cyan)")
    errors = axial_view(layers.errors, k)
    axes[2].imshow(np.ma.masked_where(~errors, np.ones(errors.shape)), cmap="autumn", vmin=0, vmax=1, origin="lower")
    axes[2].set_title(f"true errors (prediction differs from reference)\n{int(errors.sum()):,} on this slice")
    for ax in axes[1:]:
        _boxes(ax, regions, layers.image.shape, k)


def _rate_panel(ax: Any, figures: dict[str, Any], top: int) -> None:
    """Bars: error rate of the voxels in the top regions, random regions, the reviewed area and the oracle,
    then of the most and the least uncertain voxels of the reviewed area."""
    review, bands = figures["review"], figures["by_uncertainty"]
    names = [f"top {top}\nregions", f"{top} random\nregions", "reviewed\narea", "best\npossible"]
    names += [f"most\nuncertain\n{bands['most']:.0%}", f"least\nuncertain\n{bands['least']:.0%}"]
    rates = [review[k] for k in ("precision_top", "precision_random", "precision_roi", "precision_oracle")]
    rates += [bands["most_uncertain"], bands["least_uncertain"]]
    ax.bar(names, rates, color=["#d95f02", "#7570b3", "#999999", "#dddddd", "#e6ab02", "#66a61e"])
    low, high = review["precision_random_p5"], review["precision_random_p95"]
    ax.vlines(1, low, high, color="k")  # 5th-95th percentile of the random placements (the mean may lie outside)
    ax.plot([1, 1], [low, high], "_", color="k", markersize=12)
    for x, rate in enumerate(rates):
        ax.text(x, rate + 0.02, f"{rate:.0%}", ha="center", fontsize=9)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of the voxels looked at that are wrong")
    ax.tick_params(axis="x", labelsize=8)
    dice = ", ".join(f"{k_} {v:.2f}" for k_, v in figures["dice"].items())
    volumes = ", ".join(f"{k_} {v:.0f} ml" for k_, v in figures["volume_ml"].items())
    ax.set_title(
        f"errors found: top {top} {review['share_top']:.1%} of {review['errors']:,}, random "
        f"{review['share_random']:.1%}\ncase score {figures['case_score']:.3f}; Dice {dice}\n{volumes}",
        fontsize=9,
    )


def save_demo_figure(
    layers: DemoLayers, ranking: ReviewRanking, figures: dict[str, Any], path: str | Path, top: int = 5
) -> Path:
    """Write the demo PNG; ``ranking.axis`` must be 2 (axial slices of a RAS-ordered volume).

    Parameters
    ----------
    layers : DemoLayers
        Scan, predicted and reference labels, uncertainty map.
    ranking : ReviewRanking
        Ranked along axis 2; the slice shown is that of the best-ranked region inside the brain
        (:func:`figure_region` on :func:`brain_region` of the reference), else of the top region; its box
        is drawn with the top ``top`` regions' boxes.
    figures : dict
        ``core.review_hits.heldout_figures`` output (Dice, volumes, case score, review hits).
    """
    index = figure_region(ranking, brain_region(layers.reference))
    middle = layers.image.shape[2] // 2  # no region at all: the middle slice
    shown = ranking.regions[index or 0] if ranking.regions else Region(0, 0.0, 0.0, 0, (), ((0, 0),) * 3, middle)
    fig = Figure(figsize=(18, 5.2), dpi=110)
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1.12, 1, 0.95]})
    _image_panels(axes[:3], fig, layers, ranking, shown, top)
    _rate_panel(axes[3], figures, top)
    fig.tight_layout()
    buffer = BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path
