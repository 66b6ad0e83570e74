"""``uqseg demo``: train on bundled sample data, predict a held-back scan with several methods, offline."""

from __future__ import annotations

import argparse
import os

DEMO_CONFIG = {
    "net": {"channels": [8, 16, 32, 64]},
    "train": {"patch_size": [32, 32, 32], "batch_size": 2, "iterations": 300, "optimizer": "adam", "lr": 3e-3},
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline demo: train on the bundled MNI152 brain, predict with uncertainty")
    p.add_argument("--out", default="demo_output", help="folder for data, models and predictions")
    p.add_argument("--methods", default="deterministic,mc_dropout,masksembles", help="comma-separated methods")
    p.add_argument(
        "--iterations", type=int, default=DEMO_CONFIG["train"]["iterations"], help="training steps per network"
    )
    p.add_argument(
        "--view", action="store_true", help="open the result in napari (needs a display and the napari extra)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.cli.train import print_member_warnings
    from napari_uqseg.core.nifti_io import load_image
    from napari_uqseg.engine.api import predict_file, train
    from napari_uqseg.engine.overlay import save_overlay_png
    from napari_uqseg.testing.brain_sample import brain_dataset

    out = Path(args.out)
    data, heldout = brain_dataset(out / "data")
    config = {"net": DEMO_CONFIG["net"], "train": {**DEMO_CONFIG["train"], "iterations": args.iterations}}
    results = {}
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        with progress_bar(f"train {method}") as progress:
            model = train(method, data, out / "models" / method, config, progress=progress)
        print_member_warnings(model)
        with progress_bar(f"predict {method}") as progress:
            written = predict_file(model, heldout, out / "predictions" / method, progress=progress)
        image = load_image(heldout).array
        mask = load_image(written["mask"]).array
        entropy = load_image(written["entropy"]).array
        written["overlay"] = save_overlay_png(
            image, mask, entropy, written["mask"].parent / "overlay.png", title=method
        )
        results[method] = written
    print(f"\nheld-back scan: {heldout}")
    for method, written in results.items():
        print(f"\n{method}:")
        for key, path in written.items():
            print(f"  {key:20} {path}")
    if args.view:
        if not os.environ.get("DISPLAY") and os.name != "nt":
            print("no display found: skipping the napari viewer (outputs are on disk)")
        else:
            from napari_uqseg.napari_ui.demo_viewer import show_predictions

            show_predictions(heldout, results)
    return 0
