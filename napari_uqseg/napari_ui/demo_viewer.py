"""Open the demo's outputs in napari: the held-back scan, then each method's mask and uncertainty map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_uqseg.core.nifti_io import float_map_from_bytes, load_image
from napari_uqseg.napari_ui.layers import HEATMAP_COLORMAP, layer_kwargs, map_range


def show_predictions(image_path: Path, results: dict[str, dict[str, Path]]) -> None:
    """Start napari with one image layer and, per method, a mask and an entropy heatmap (blocks until closed)."""
    import napari

    viewer = napari.Viewer(title="napari-uqseg demo")
    image = load_image(image_path)
    viewer.add_image(image.array, name="held-back scan", colormap="gray", **layer_kwargs(image))
    for method, files in results.items():
        mask = float_map_from_bytes(files["mask"].read_bytes(), str(files["mask"]))
        entropy = float_map_from_bytes(files["entropy"].read_bytes(), str(files["entropy"]))
        n_classes = int(mask.array.max()) + 1
        viewer.add_image(
            entropy.array,
            name=f"{method} uncertainty",
            colormap=HEATMAP_COLORMAP,
            blending="additive",
            contrast_limits=map_range("entropy", max(n_classes, 2)),
            visible=method == next(iter(results)),
            **layer_kwargs(entropy),
        )
        viewer.add_labels(
            np.rint(mask.array).astype(np.uint8), name=f"{method} mask", opacity=0.4, **layer_kwargs(mask)
        )
    napari.run()
