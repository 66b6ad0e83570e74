"""``uqseg split``: train/test (and calibration) case lists that keep scan pairs together."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split", help="write train.txt / test.txt case lists (scan pairs kept together)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="folder for train.txt and test.txt")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--calibration-fraction",
        type=float,
        default=0.0,
        help="share of all cases written to calibration.txt, taken from the training list: cases the training "
        "never sees, not even to choose its checkpoint; calibrate on them with uqseg conformal --cases (0: none)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.engine.data import split_dataset

    paths = split_dataset(args.data, args.out, args.test_fraction, args.seed, args.calibration_fraction)
    for name, path in paths.items():
        print(f"{name:11} {path} ({len(path.read_text().split())} cases)")
    return 0
