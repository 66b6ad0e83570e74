"""Choose the fine-tune's ``confident`` cut on a model's validation cases at the simulated site (docs/loop.md).

Usage::

    python scripts/confident_cut.py MODEL_DIR [MODEL_DIR ...] [--cuts 0.6 0.7 0.8 0.9 0.95 0.99] [--share 0.8]
        [--site bias:3,contrast:2,blur:1,resolution:2] [--out runs/confident_cut.json]

For each model: predict its validation cases (``val_cases`` of model.json) with the site's shift applied, and
count, pooled over the cases, the share of its errors (mask != truth inside the review ROI) and of the ROI
voxels whose largest class probability lies below each cut. The rule picks the lowest cut below which at least
``--share`` of the errors lie: an unchecked partial label is then trusted only where few errors hide.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_uqseg.core.review import foreground_roi
from napari_uqseg.core.site import SIMULATED_SITE, apply_site, parse_site
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model, read_card
from napari_uqseg.engine.uq_calibration import labelled_cases


def below_cut_shares(model_dir: Path, cuts: list[float], site: tuple[tuple[str, int], ...]) -> dict:
    """Pooled shares of errors and ROI voxels below each cut on the model's site-shifted validation cases."""
    data = read_card(model_dir).training.get("data", {})
    method = load_model(model_dir, "cpu")
    errors_below, roi_below = np.zeros(len(cuts)), np.zeros(len(cuts))
    errors_total = roi_total = 0
    for case_id, image, truth in labelled_cases(data["dir"], data.get("val_cases", [])):
        image = Volume(apply_site(image.array, case_id, site, image.spacing), image.affine)
        prediction = predict_volume(method, image, output_dtype="float32")
        mask = np.asarray(prediction.mask.array)
        roi = foreground_roi(mask)
        confidence = prediction.probabilities.array.max(axis=0)
        errors = (mask != truth) & roi
        errors_total += int(errors.sum())
        roi_total += int(roi.sum())
        for k, cut in enumerate(cuts):
            errors_below[k] += int((errors & (confidence < cut)).sum())
            roi_below[k] += int((roi & (confidence < cut)).sum())

    def shares(counts: np.ndarray, total: int) -> dict[str, float]:
        return {str(c): round(float(n) / max(total, 1), 4) for c, n in zip(cuts, counts, strict=True)}

    return {
        "cases": len(data.get("val_cases", [])),
        "errors": errors_total,
        "errors_below": shares(errors_below, errors_total),
        "roi_below": shares(roi_below, roi_total),
    }


def chosen_cut(shares: dict[str, float], share: float) -> float | None:
    """The lowest cut below which at least ``share`` of the errors lie (None if no cut reaches it)."""
    reached = [float(c) for c, s in shares.items() if s >= share]
    return min(reached) if reached else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--cuts", nargs="+", type=float, default=[0.6, 0.7, 0.8, 0.9, 0.95, 0.99])
    parser.add_argument("--share", type=float, default=0.8)
    parser.add_argument("--site", default=None, help="shifts of the site (default: the review loop's)")
    parser.add_argument("--out", default="runs/confident_cut.json")
    args = parser.parse_args()
    site = parse_site(args.site) if args.site else SIMULATED_SITE
    result = {}
    print("| model | errors below " + " / ".join(map(str, args.cuts)) + " | ROI voxels below | chosen cut |")
    print("|---|---|---|---|")
    for model in args.models:
        row = below_cut_shares(model, sorted(args.cuts), site)
        row["chosen"] = chosen_cut(row["errors_below"], args.share)
        result[str(model)] = row
        errors = " / ".join(f"{v:.0%}" for v in row["errors_below"].values())
        roi = " / ".join(f"{v:.0%}" for v in row["roi_below"].values())
        print(f"| {model.name} | {errors} | {roi} | {row['chosen']} |", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
