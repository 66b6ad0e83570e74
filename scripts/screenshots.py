"""Screenshots of the "Segment with uncertainty" widget for the docs: heatmap overlay and review table.

Usage (a display is needed; on a headless machine prefix ``xvfb-run -a``)::

    python scripts/screenshots.py [--out docs/img] [--work runs/screenshots] [--iterations 200]

Trains an MC-Dropout U-Net on the MNI152 brain bundled with nilearn (offline; cached in ``--work``), opens
the held-back scan in napari through the plugin's reader, predicts through the in-process ``LocalBackend``
exactly as a user would with the widget, focuses the most uncertain region and saves:

- ``heatmap_overlay.png``: the whole window (viewer with mask + epistemic heatmap, and the dock widget);
- ``review_table.png``: the review panel (cases, slices, regions, "k of n reviewed").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

CONFIG = {
    "net": {"channels": [8, 16, 32, 64]},
    "train": {"patch_size": [32, 32, 32], "batch_size": 2, "optimizer": "adam", "lr": 3e-3},
    "method": {"samples": 8},
}


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


def brain_model(work: Path, iterations: int) -> tuple[Path, Path]:
    """The trained model folder and the held-back scan (trained once, then reused)."""
    from napari_uqseg.engine.api import train
    from napari_uqseg.testing.brain_sample import brain_dataset

    data, heldout = brain_dataset(work / "data")
    model = work / "models" / f"brain_mcd_{iterations}"
    if not (model / "model.json").is_file():
        config = {**CONFIG, "train": {**CONFIG["train"], "iterations": iterations}}
        print(f"training MC-Dropout for {iterations} iterations (once; cached in {model}) ...")
        train("mc_dropout", data, model, config, device="auto")
    return model, heldout


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img", help="folder for the PNGs")
    parser.add_argument("--work", default="runs/screenshots", help="cache for data, model and local backend")
    parser.add_argument("--iterations", type=int, default=200, help="training steps (more: smoother maps)")
    parser.add_argument("--size", default="1700x1000", help="window size WIDTHxHEIGHT in pixels")
    args = parser.parse_args(argv)

    import napari

    from napari_uqseg.client.local import LocalBackend
    from napari_uqseg.napari_ui.layers import viewer_camera
    from napari_uqseg.napari_ui.segment_widget import SegmentWidget

    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir, heldout = brain_model(work, args.iterations)
    data_dir = work / f"local_{model_dir.name}"
    LocalBackend(data_dir, "cpu", models={"brain": model_dir}, jobs=False).close()  # import the model once

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
    widget.model_combo.setCurrentText("brain")
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
    top = float(np.percentile(heat.data, 99.5))  # a briefly trained model's epistemic values sit far below log C
    heat.contrast_limits = (0.15 * top, top)
    widget.review.select_row(0)
    widget.review.buttons["done"].click()  # shows a reviewed row and the "k of n" counter moving
    widget.review.select_row(1)
    camera = viewer_camera(viewer)
    camera.zoom = camera.zoom / 2  # the 4 mm sample looks blocky that close: show more context
    wait(lambda: True)

    written = [out / "heatmap_overlay.png", out / "review_table.png"]
    viewer.screenshot(str(written[0]), canvas_only=False, flash=False)
    widget.review.grab().save(str(written[1]))
    widget.close()
    viewer.close()
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
