"""``uqseg predict``: mask, probabilities, uncertainty maps and review ranking for one image."""

from __future__ import annotations

import argparse

from napari_uqseg.cli.tta_option import add_tta_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict one NIfTI image or DICOM series with a trained model")
    p.add_argument(
        "--model", default=None, help="model folder written by `uqseg train` (default: the shipped starter brain model)"
    )
    p.add_argument("--image", required=True, help="NIfTI image (.nii or .nii.gz), DICOM series folder or .zip")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--review-map",
        default=None,
        help="uncertainty map that ranks the review regions (default: mutual_information where the method has it, "
        "else entropy)",
    )
    add_tta_argument(p)
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "float32", "bfloat16"),
        help="network arithmetic: auto = bfloat16 on CPUs with native bfloat16 (several times faster, Dice within "
        "0.002), else float32; float32 switches it back",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.core.bundled_models import starter_model_dir
    from napari_uqseg.core.dicom_series import is_dicom_source
    from napari_uqseg.core.predict_options import PredictOptions
    from napari_uqseg.engine.dicom_predict import predict_dicom
    from napari_uqseg.engine.prediction_files import predict_file

    options = PredictOptions(review_map=args.review_map, tta=args.tta, precision=args.precision)
    if args.model is None:
        args.model = str(starter_model_dir())
        print(f"no --model given: using the starter model {args.model} (see its MODEL_CARD.md)")
    # a DICOM series also gets mask.seg.dcm and <map>.pm.dcm that reference it
    predict = predict_dicom if is_dicom_source(args.image) else predict_file
    with progress_bar("predict") as progress:
        written = predict(args.model, args.image, args.out, args.device, progress, options)
    for key, path in written.items():
        print(f"{key:20} {path}")
    return 0
