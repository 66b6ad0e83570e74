"""``uqseg conformal``: calibrate a model's volume intervals and outer/inner masks on held-out cases."""

from __future__ import annotations

import argparse

from napari_uqseg.cli.tta_option import add_tta_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "conformal",
        help="calibrate volume intervals and outer/inner masks with a guaranteed miss rate (writes "
        "uq_calibration.json into the model folder)",
    )
    p.add_argument("--model", required=True, help="trained model folder")
    p.add_argument("--data", help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--cases", help="case list to calibrate on (default: the validation split its training held out)")
    p.add_argument(
        "--risk",
        type=float,
        default=0.05,
        help="expected share of the structure the outer mask may miss (and the "
        "inner mask may wrongly include), e.g. 0.05",
    )
    add_tta_argument(p, multiple=True)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.engine.data import read_case_list
    from napari_uqseg.engine.uq_calibration import calibrate_model

    with progress_bar("conformal") as progress:
        entries = calibrate_model(
            args.model, args.data, read_case_list(args.cases), tuple(args.tta), args.risk, args.device, progress
        )
    for key, entry in entries.items():
        masks = entry["masks"]["classes"]
        thresholds = ", ".join(f"class {c}: outer {m['outer']}, inner {m['inner']}" for c, m in masks.items())
        print(f"tta {key}: {len(entry['cases'])} cases; volume source {entry['volume_source']}; {thresholds}")
    print(f"written to {args.model}/uq_calibration.json")
    return 0
