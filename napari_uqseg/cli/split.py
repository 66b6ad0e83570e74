"""``uqseg split``: train/test case lists that keep scan pairs together."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split", help="write train.txt / test.txt case lists (scan pairs kept together)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="folder for train.txt and test.txt")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.engine.data import split_dataset

    for name, path in split_dataset(args.data, args.out, args.test_fraction, args.seed).items():
        print(f"{name:6} {path} ({len(path.read_text().split())} cases)")
    return 0
