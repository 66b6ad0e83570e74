"""``uqseg calibrate``: fit a trained model's temperature on validation cases, save a calibrated copy."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", help="temperature-scale any trained model on validation cases (writes a calibrated copy)"
    )
    p.add_argument("--model", required=True, help="trained model folder")
    p.add_argument("--out", required=True, help="folder for the calibrated copy (the original is not changed)")
    p.add_argument("--data", help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--cases", help="case list to fit on (default: the validation split its training held out)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.engine.data import read_case_list
    from napari_uqseg.engine.make_model import calibrate

    out, temperature = calibrate(args.model, args.out, args.data, read_case_list(args.cases), args.device)
    print(f"temperature {temperature:.4f}; calibrated model written to {out}")
    return 0
