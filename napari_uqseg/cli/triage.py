"""``uqseg triage``: predict a whole study with uncertainty and write a worklist sorted by the case score."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("triage", help="predict every case of a study and write a worklist (worst first)")
    p.add_argument("--model", required=True, help="model folder written by `uqseg train`")
    p.add_argument("--data", required=True, help="folder of NIfTI images (or MSD dataset), or a file of image paths")
    p.add_argument("--out", required=True, help="output folder: one sub-folder per case, worklist.csv/.json")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="process pool or Ray cluster")
    p.add_argument("--workers", type=int, help="pool processes / Ray actors (default: one per core; Ray: 1)")
    p.add_argument(
        "--ray-address",
        help="Ray cluster address (default: RAY_ADDRESS, else one `ray start` began here, else a private one)",
    )
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per Ray actor (fractions share a GPU)")
    p.add_argument("--device", default="cpu", help="local executor: cpu, cuda or auto")
    p.add_argument("--review-map", help="uncertainty map that ranks the review queue (default: as `uqseg predict`)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.engine.triage import triage

    workers = args.workers if args.workers or args.executor == "local" else 1
    with progress_bar("triage") as progress:
        summary = triage(
            args.model,
            args.data,
            args.out,
            args.executor,
            workers,
            args.device,
            args.review_map,
            progress,
            args.num_gpus,
            args.ray_address,
        )
    print(
        f"{summary['cases']} cases: {summary['skipped']} already done, {summary['predicted']} predicted, "
        f"{len(summary['failed'])} failed in {summary['seconds']:.1f} s ({summary['workers']} {args.executor} workers)"
    )
    for case, error in summary["failed"].items():
        print(f"failed {case}: {error}")
    print(f"worklist {summary['worklist']}")
    return 1 if summary["failed"] else 0
