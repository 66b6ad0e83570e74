"""The demo's one figure: where the model is wrong next to where it is unsure, with the review figures.

Four panels on one axial slice (radiological: patient right on the left, anterior up) through the top review
region: the held-back scan, its error map (prediction differs from the reference), the uncertainty map with
the top review-region boxes, and the share of the error voxels inside those boxes against random boxes of
the same sizes. matplotlib's object API only (no ``pyplot``), as in ``core.report_plots``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from napari_uqseg.core.nifti_io import atomic_write_bytes
from napari_uqseg.core.review_ranking import ReviewRanking


def axial_view(volume: np.ndarray, k: int) -> np.ndarray:
    """Slice ``k`` of an ``(X, Y, Z)`` RAS-ordered volume as a 2-D array to draw with ``origin="lower"``."""
    return volume[::-1, :, k].T


def _boxes(ax: Any, ranking: ReviewRanking, shape: tuple[int, ...], k: int, top: int) -> None:
    for region in ranking.regions[:top]:
        (x0, x1), (y0, y1), (z0, z1) = region.bbox
        inside = z0 <= k < z1
        rect = Rectangle(
            (shape[0] - x1 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.2, ls="-" if inside else ":"
        )
        rect.set_edgecolor("cyan")
        ax.add_patch(rect)
        ax.text(shape[0] - x1, y1 + 0.5, str(region.id), color="cyan", fontsize=8)


def save_demo_figure(
    image: np.ndarray,
    errors: np.ndarray,
    uncertainty: np.ndarray,
    ranking: ReviewRanking,
    figures: dict[str, Any],
    path: str | Path,
    top: int = 5,
) -> Path:
    """Write the demo PNG; ``ranking.axis`` must be 2 (axial slices of a RAS-ordered volume).

    Parameters
    ----------
    image, errors, uncertainty : np.ndarray
        ``(X, Y, Z)`` scan, bool error map, uncertainty map.
    ranking : ReviewRanking
        Ranked along axis 2; the slice shown is the top region's.
    figures : dict
        ``core.review_hits.heldout_figures`` output (Dice, volumes, case score, review hits).
    """
    k = ranking.regions[0].slice_index if ranking.regions else image.shape[2] // 2
    fig = Figure(figsize=(16, 4.6), dpi=110)
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 0.9]})
    shown = axial_view(image, k)
    for ax in axes[:3]:
        ax.imshow(shown, cmap="gray", origin="lower")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_title(f"held-back scan (axial slice {k}; R on the left)")
    err = np.ma.masked_where(~axial_view(errors, k), np.ones_like(shown))
    axes[1].imshow(err, cmap="autumn", origin="lower", alpha=0.9, vmin=0, vmax=1)
    axes[1].set_title(f"errors vs reference ({int(errors.sum()):,} voxels in the volume)")
    heat = axes[2].imshow(axial_view(uncertainty, k), cmap="inferno", origin="lower", alpha=0.75)
    fig.colorbar(heat, ax=axes[2], fraction=0.04)
    _boxes(axes[2], ranking, image.shape, k, top)
    axes[2].set_title(f"uncertainty ({ranking.map_name}) + top {top} review regions")
    review = figures["review"]
    bars = [review["share_top"], review["share_random"]]
    axes[3].bar([f"top {top} regions", "random regions"], bars, color=["#d95f02", "#7570b3"])
    axes[3].errorbar(
        [1],
        [review["share_random"]],
        yerr=[[bars[1] - review["random_p5"]], [review["random_p95"] - bars[1]]],
        color="k",
        capsize=4,
    )
    axes[3].set_ylim(0, 1)
    axes[3].set_ylabel("share of all error voxels inside")
    volumes = ", ".join(f"{k_}: {v:.0f} ml" for k_, v in figures["volume_ml"].items())
    dice = ", ".join(f"{k_} {v:.2f}" for k_, v in figures["dice"].items())
    axes[3].set_title(f"case score {figures['case_score']:.3f}\nDice {dice}\n{volumes}", fontsize=9)
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    from io import BytesIO

    buffer = BytesIO()
    canvas.print_png(buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path
