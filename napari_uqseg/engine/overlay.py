"""A PNG that shows a prediction at a glance: image, mask contours and the uncertainty heatmap."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_uqseg.core.review import foreground_roi


def overlay_slice(mask: np.ndarray, uncertainty: np.ndarray, axis: int = 2) -> int:
    """Index along ``axis`` of the slice with the most uncertainty summed over the dilated predicted
    foreground (the review's region of interest): noise far from the structure does not choose it."""
    near = np.where(foreground_roi(mask), uncertainty, 0.0)
    return int(np.argmax(near.sum(axis=tuple(a for a in range(near.ndim) if a != axis))))


def save_overlay_png(
    image: np.ndarray, mask: np.ndarray, uncertainty: np.ndarray, path: str | Path, axis: int = 2, title: str = ""
) -> Path:
    """Write a two-panel PNG of the slice along ``axis`` with the most uncertainty around the prediction
    (:func:`overlay_slice`).

    Parameters
    ----------
    image, mask, uncertainty : np.ndarray
        ``(I, J, K)`` raw intensities, labels, and an uncertainty map (nats).
    path : str or Path
        PNG to write.

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = overlay_slice(mask, uncertainty, axis)
    take = [slice(None)] * 3
    take[axis] = index
    img, lab, unc = (np.rot90(a[tuple(take)]) for a in (image, mask, uncertainty))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), dpi=110)
    for ax in axes:
        ax.imshow(img, cmap="gray")
        ax.axis("off")
    for value, colour in zip(range(1, int(lab.max()) + 1), ("#35b779", "#31688e", "#fde725", "#e76f51"), strict=False):
        axes[0].contour(lab == value, levels=[0.5], colors=[colour], linewidths=1.2)
    axes[0].set_title("mask contours")
    heat = axes[1].imshow(
        np.ma.masked_less(unc, 1e-3), cmap="inferno", alpha=0.75, vmin=0, vmax=max(float(unc.max()), 1e-6)
    )
    axes[1].set_title("uncertainty (predictive entropy, nats)")
    fig.colorbar(heat, ax=axes[1], fraction=0.046)
    fig.suptitle(f"{title}  slice {index} along axis {axis} (most uncertain around the mask)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
