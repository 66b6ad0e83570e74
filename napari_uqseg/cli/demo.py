"""``uqseg demo``: the shipped starter model on a held-back brain scan with a realistic change, offline.

By default no training happens: the starter model (``napari_uqseg/resources/starter_brain``) predicts a
held-back MNI152 scan at 2 mm that has its own anatomy (a smooth deformation) and a bias field, a contrast
change and a resolution loss. The output puts the error map next to the uncertainty map and reports the
share of errors inside the top review regions against random regions, the case score and the volume per
class. ``--train`` instead trains ``--methods`` on deformed copies of the template first (minutes each).
"""

from __future__ import annotations

import argparse
import json
import os

DEMO_CONFIG = {
    "net": {"channels": [8, 16, 32, 64]},
    "train": {"patch_size": [48, 48, 48], "batch_size": 2, "iterations": 300, "optimizer": "adam", "lr": 3e-3},
}
TOP_REGIONS = 5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline demo: the starter model on a held-back brain scan, errors vs uncertainty")
    p.add_argument("--out", default="demo_output", help="folder for data, models and predictions")
    p.add_argument("--train", action="store_true", help="train --methods on the bundled brain instead of the starter")
    p.add_argument("--methods", default="mc_dropout,masksembles", help="comma-separated methods (with --train)")
    p.add_argument(
        "--iterations", type=int, default=DEMO_CONFIG["train"]["iterations"], help="training steps (with --train)"
    )
    p.add_argument(
        "--view", action="store_true", help="open the result in napari (needs a display and the napari extra)"
    )
    p.set_defaults(run=run)


def _models(args: argparse.Namespace, out, progress_bar) -> dict[str, object]:
    """``{name: model folder}``: the starter model, or freshly trained ones with ``--train``."""
    from napari_uqseg.cli.train import print_member_warnings
    from napari_uqseg.core.bundled_models import STARTER_MODEL_NAME, starter_model_dir
    from napari_uqseg.core.sample_data import brain_dataset
    from napari_uqseg.engine.make_model import train

    if not args.train:
        print(f"using the starter model {starter_model_dir()} (see its MODEL_CARD.md); --train trains instead")
        return {STARTER_MODEL_NAME: starter_model_dir()}
    data, _ = brain_dataset(out / "data")
    config = {"net": DEMO_CONFIG["net"], "train": {**DEMO_CONFIG["train"], "iterations": args.iterations}}
    models = {}
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        with progress_bar(f"train {method}") as progress:
            models[method] = train(method, data, out / "models" / method, config, progress=progress)
        print_member_warnings(models[method])
    return models


def _report(name: str, figures: dict) -> None:
    review = figures["review"]
    print(f"\n{name}:")
    print("  Dice          " + ", ".join(f"{k} {v:.3f}" for k, v in figures["dice"].items()))
    print("  volume        " + ", ".join(f"{k} {v:.0f} ml" for k, v in figures["volume_ml"].items()))
    print("  reference     " + ", ".join(f"{k} {v:.0f} ml" for k, v in figures["reference_volume_ml"].items()))
    print(f"  case score    {figures['case_score']:.4f}")
    top = review["top_regions"]
    print(
        f"  errors inside the top {top} review regions ({review['region_voxels']:,} voxels): "
        f"{review['precision_top']:.0%} of their voxels are wrong; {top} random regions of the same shapes "
        f"in the reviewed area: {review['precision_random']:.0%} (5-95 %: {review['precision_random_p5']:.0%}-"
        f"{review['precision_random_p95']:.0%}); the whole reviewed area ({review['roi_voxels']:,} voxels): "
        f"{review['precision_roi']:.0%}; best possible: {review['precision_oracle']:.0%}"
    )
    bands = figures["by_uncertainty"]
    print(
        f"  the most uncertain {bands['most']:.0%} of the reviewed voxels are wrong {bands['most_uncertain']:.0%} "
        f"of the time, the least uncertain {bands['least']:.0%} {bands['least_uncertain']:.0%}"
    )
    print(
        f"  share of all {review['errors']:,} error voxels found: top {top} regions {review['share_top']:.1%}, "
        f"random regions {review['share_random']:.1%}, best possible {review['share_oracle']:.1%}"
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.core.sample_data import write_heldout
    from napari_uqseg.engine.starter import score_heldout

    out = Path(args.out)
    heldout = write_heldout(out / "data")
    reference = heldout.with_name("heldout_label.nii.gz")
    results, summary = {}, {}
    for name, model in _models(args, out, progress_bar).items():
        print(f"predicting the held-back scan with {name} ...")
        results[name], summary[name] = score_heldout(model, heldout, reference, out / "predictions" / name, TOP_REGIONS)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nheld-back scan: {heldout} (own anatomy; bias field, contrast and resolution changed)")
    for name, figures in summary.items():
        _report(name, figures)
        for key, path in results[name].items():
            print(f"  {key:20} {path}")
    print(f"\nsummary: {out / 'summary.json'}")
    if args.view:
        if not os.environ.get("DISPLAY") and os.name != "nt":
            print("no display found: skipping the napari viewer (outputs are on disk)")
        else:
            from napari_uqseg.napari_ui.demo_viewer import show_predictions

            show_predictions(heldout, results)
    return 0
