"""``uqseg train``: train one method on an MSD-layout dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a method on an MSD/nnU-Net-layout dataset")
    p.add_argument("--method", required=True, help="registered method name (see `uqseg methods`)")
    p.add_argument("--data", required=True, help="dataset folder with dataset.json, imagesTr/, labelsTr/")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--config", help="JSON file with optional 'net', 'train' and 'method' sections")
    p.add_argument("--cases", help="file listing the case ids to train on (default: all)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--equal-compute",
        type=int,
        metavar="STEPS",
        help="train exactly STEPS steps per network (stop_rule 'fixed') instead of stopping at the plateau",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads (overrides the config's train.threads; 0: torch's default)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.core.errors import InputError
    from napari_uqseg.engine.data import read_case_list
    from napari_uqseg.engine.make_model import read_config, train

    config = read_config(args.config)
    overrides = {}  # command-line flags that replace the config's train settings
    if args.equal_compute is not None:
        overrides.update(stop_rule="fixed", iterations=args.equal_compute)
    if args.threads is not None:
        if args.threads < 0:
            raise InputError("--threads", f"must be >= 0, got {args.threads}")
        overrides["threads"] = args.threads
    config = {**config, "train": {**config.get("train", {}), **overrides}}
    cases = read_case_list(args.cases)
    with progress_bar(f"train {args.method}") as progress:
        out = train(args.method, args.data, args.out, config, cases, args.device, progress)
    print(f"model written to {out}")
    print_member_warnings(out)
    return 0


def print_member_warnings(model_dir: Path) -> None:
    """Print the member-check warnings the training wrote into the model card (none: prints nothing)."""
    from napari_uqseg.engine.model_folder import read_card

    for warning in read_card(model_dir).member_warnings:
        print(f"warning (member check on the validation cases): {warning}")
