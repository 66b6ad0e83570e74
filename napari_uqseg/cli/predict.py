"""``uqseg predict``: mask, probabilities, uncertainty maps and review ranking for one image."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict one NIfTI image with a trained model")
    p.add_argument("--model", required=True, help="model folder written by `uqseg train`")
    p.add_argument("--image", required=True, help="NIfTI image (.nii or .nii.gz)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--review-map", default="entropy", help="uncertainty map that ranks the review queue")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.engine.api import predict_file

    with progress_bar("predict") as progress:
        written = predict_file(args.model, args.image, args.out, args.device, progress, args.review_map)
    for key, path in written.items():
        print(f"{key:20} {path}")
    return 0
