"""Screenshots of the "Segment with uncertainty" widget for the docs: the demo's scan, errors and uncertainty.

Usage (a display is needed; on a headless machine prefix ``xvfb-run -a``)::

    python scripts/screenshots.py [--out docs/img] [--work runs/screenshots]

Starts from an empty local data folder as a new user does: opens the demo's held-back brain scan (2 mm, its
own anatomy, bias field, contrast and resolution changed; see ``uqseg demo``) through the plugin's reader,
presses "Use the starter model", predicts, adds the error map (prediction vs reference, red outlines) over
the epistemic heatmap, focuses the top review region and saves:

- ``heatmap_overlay.png``: the whole window (axial view, direction labels, errors over uncertainty, widget);
- ``review_table.png``: the review panel (cases, slices, regions, "k of n reviewed");
- ``get_a_model.png``: the "Get a model" panel after the starter model was added.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def wait(condition: Callable[[], bool], timeout: float = 600.0) -> None:
    """Run the Qt event loop until ``condition()`` holds (workers report back through it)."""
    from napari.qt import get_qapp

    app, deadline = get_qapp(), time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):  # let the canvas draw the new state
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img", help="folder for the PNGs")
    parser.add_argument("--work", default="runs/screenshots", help="folder for the scan and the local backend")
    parser.add_argument("--size", default="1700x1000", help="window size WIDTHxHEIGHT in pixels")
    args = parser.parse_args(argv)

    import shutil

    import napari

    from napari_uqseg.core.bundled_models import STARTER_MODEL_NAME
    from napari_uqseg.core.nifti_io import load_label
    from napari_uqseg.core.sample_data import write_heldout
    from napari_uqseg.napari_ui.layers import layer_kwargs, viewer_camera
    from napari_uqseg.napari_ui.segment_widget import SegmentWidget

    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    heldout = write_heldout(work / "data")
    reference = load_label(heldout.with_name("heldout_label.nii.gz"))
    data_dir = work / "local"
    shutil.rmtree(data_dir, ignore_errors=True)  # an empty data folder: the first start

    width, height = (int(v) for v in args.size.lower().split("x"))
    viewer = napari.Viewer(title="napari-uqseg: segment with uncertainty", show=True)
    viewer.window.resize(width, height)
    [image] = viewer.open(str(heldout), plugin="napari-uqseg")
    image.name = "held-back scan"
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment with uncertainty", area="right")

    widget.connection.local.setChecked(True)
    widget.connection.data_dir.setText(str(data_dir))
    widget.connection.connect_button.click()
    wait(lambda: widget.connection.worker is None)
    if widget.backend is None:
        raise RuntimeError(widget.connection.status.text())
    widget.model_panel.starter_button.click()
    wait(lambda: widget.model_panel.worker is None)
    widget.model_combo.setCurrentText(STARTER_MODEL_NAME)
    widget.predict_button.click()
    wait(lambda: widget.predict_worker is None)
    if widget.current is None:
        raise RuntimeError(widget.predict_status.text())

    maps = [widget.map_combo.itemData(i) for i in range(widget.map_combo.count())]
    widget.map_combo.setCurrentIndex(maps.index("mutual_information"))  # epistemic: where the samples disagree
    widget.threshold.setValue(8)
    widget.opacity.setValue(100)
    case = widget.cases[widget.current]
    case.layers.mask.opacity = 0.15
    heat = case.layers.heatmap  # window the colour range as a user would in napari's layer controls:
    top = float(np.percentile(heat.data, 99.5))  # epistemic values of a small model sit far below log C
    # colour only the most uncertain voxels: the brain is about a quarter of the volume, its top tenth 2.5 %
    heat.contrast_limits = (float(np.percentile(heat.data, 97.5)), top)
    errors = (case.layers.mask.data != reference.array).astype(np.uint8)
    viewer.add_labels(errors, name="errors vs reference", opacity=0.9, **layer_kwargs(reference)).contour = 1
    widget.review.select_row(0)
    widget.review.buttons["done"].click()  # shows a reviewed row and the "k of n" counter moving
    widget.review.select_row(0)
    camera = viewer_camera(viewer)
    camera.zoom = camera.zoom / 1.5  # show some context around the region
    wait(lambda: True)

    written = [out / "heatmap_overlay.png", out / "review_table.png", out / "get_a_model.png"]
    viewer.screenshot(str(written[0]), canvas_only=False, flash=False)
    widget.review.grab().save(str(written[1]))
    widget.model_panel.grab().save(str(written[2]))
    widget.close()
    viewer.close()
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
