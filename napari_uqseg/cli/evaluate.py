"""``uqseg evaluate``: per-case and aggregate quality and uncertainty figures, written as a report folder."""

from __future__ import annotations

import argparse
import shlex

from napari_uqseg.cli.tta_option import add_tta_argument
from napari_uqseg.core.shifts import DESCRIPTIONS


def add_parser(sub: argparse._SubParsersAction) -> None:
    shifts = "; ".join(f"{name}: {text}" for name, text in DESCRIPTIONS.items())
    p = sub.add_parser(
        "evaluate",
        help="evaluate a model on a labelled dataset; writes a report folder the explorer opens",
        description="Predict every case, score Dice, calibration and error detection, and write a report FOLDER: "
        "report.json, table.txt, reliability.png, risk_coverage.png, dice_after_removal.png and cases/<id>/ "
        "(prediction, error map, uncertainty maps, case.json). Open it with `uqseg explore REPORT_DIR`.",
    )
    p.add_argument("--model", required=True, help="model folder written by `uqseg train`")
    p.add_argument("--data", required=True, help="MSD-layout dataset folder (dataset.json, imagesTr/, labelsTr/)")
    p.add_argument("--report", required=True, help="report FOLDER to write (not a .json file; made atomically)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--cases", help="file listing the case ids to evaluate, e.g. test.txt of `uqseg split` (default all)"
    )
    which.add_argument(
        "--validation-cases",
        action="store_true",
        help="evaluate the validation split the model's card records (the cases its plateau rule chose on), "
        "e.g. to choose a setting such as --tta without touching the test cases",
    )
    p.add_argument("--shift", metavar="NAME:SEVERITY", help=f"corrupt the images first, severity 1..5. {shifts}")
    p.add_argument("--map", default="entropy", help="uncertainty map scored as error detector (default entropy)")
    p.add_argument("--roi", default="gt_bbox", choices=("gt_bbox", "union_bbox", "whole"), help="voxels scored")
    p.add_argument("--keep-probabilities", action="store_true", help="also save per-case class probabilities (large)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shifts and of stochastic methods")
    add_tta_argument(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    p.set_defaults(run=run)


def command_line(args: argparse.Namespace) -> str:
    """The canonical command that reproduces this evaluation (recorded in report.json)."""
    parts = ["uqseg", "evaluate", "--model", args.model, "--data", args.data, "--report", args.report]
    for option in ("cases", "shift"):
        if getattr(args, option):
            parts += [f"--{option}", getattr(args, option)]
    if args.validation_cases:
        parts.append("--validation-cases")
    parts += ["--map", args.map, "--roi", args.roi, "--seed", str(args.seed)]
    if args.keep_probabilities:
        parts.append("--keep-probabilities")
    if getattr(args, "tta", "none") != "none":
        parts += ["--tta", args.tta]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.core.shifts import parse_shift
    from napari_uqseg.engine.data import read_case_list
    from napari_uqseg.engine.evaluation import EvalSettings, evaluate
    from napari_uqseg.engine.model_folder import validation_split

    shift = parse_shift(args.shift) if args.shift else None
    settings = EvalSettings(
        map_name=args.map, roi=args.roi, keep_probabilities=args.keep_probabilities, seed=args.seed, tta=args.tta
    )
    cases = validation_split(args.model, args.data)[2] if args.validation_cases else read_case_list(args.cases)
    with progress_bar("evaluate") as progress:
        out = evaluate(
            args.model,
            args.data,
            args.report,
            cases,
            shift,
            settings,
            args.device,
            progress,
            command=command_line(args),
            cases_file=args.cases,
            overwrite=args.overwrite,
        )
    print((out / "table.txt").read_text(), end="")
    print(f"report written to {out}; open it with: uqseg explore {out}")
    return 0
