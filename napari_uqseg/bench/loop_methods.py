"""Per-method figures of the review loop: region sizes, errors found per region order, case scores.

For one trained model: predict its validation cases (the ones its training held out), the same validation cases
under a selection shift, the in-distribution test cases and the same test cases as the simulated site acquired
them (``core.site``); for each case record
Dice, every case score (``core.case_scores``), the largest review region and the error voxels found in the
first regions in uncertainty order (the queue) and in random and oracle order of same-sized ROI pieces
(``core.review_effort``), plus the errors found against reviewed ROI voxels.
``summarise`` then picks the default case score (``core.case_scores.choose_case_score``: the best ranker of
validation failures among the scores that detect the selection shift) and the review map whose queue finds the
most errors in its first regions, on the validation cases only, and reports both on the test cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.core.case_scores import DESCRIPTIONS, choose_case_score
from napari_uqseg.core.metrics import mean_dice
from napari_uqseg.core.nifti_io import load_image, load_label
from napari_uqseg.core.predict_options import PredictOptions
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.ranking_metrics import auroc, spearman
from napari_uqseg.core.review import foreground_roi, region_label_image
from napari_uqseg.core.review_effort import ORDERS, effort_curve, errors_in_first, region_order, roi_pieces
from napari_uqseg.core.site import SIMULATED_SITE, apply_site
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.data import case_pairs, num_classes_of
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model, read_card

#: reviewed share of ROI voxels at which the errors-found curve is sampled
BUDGETS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10)
RANDOM_SEEDS = 10
FIRST_REGIONS = 5
#: the shift of the validation cases a default case score must detect: unlike the simulated site (image noise
#: against bias, contrast, blur and resolution), so that the site's test figures stay unseen
SELECTION_SHIFT: tuple[tuple[str, int], ...] = (("noise", 3),)


def _recall_at(sizes: np.ndarray, found: np.ndarray, roi_voxels: int, total_errors: int) -> list[float]:
    """Errors found (share of the ROI's errors) after reviewing ``b * roi_voxels`` voxels, per budget.

    Between region ends the count is interpolated linearly (the reader is part-way through a region); past the
    last region it stays at the total found.
    """
    if not total_errors or not sizes.size:
        return [0.0] * len(BUDGETS)
    x, y = np.r_[0.0, sizes], np.r_[0.0, found]
    return [float(np.interp(b * roi_voxels, x, y)) / total_errors for b in BUDGETS]


def _queue_figures(regions: np.ndarray, errors: np.ndarray, roi_voxels: int, total: int) -> dict[str, Any]:
    """Errors found in the first regions of one map's queue, in queue order and in the queue's best order."""
    sizes = np.bincount(regions.ravel(), minlength=1)[1:]
    ids = region_order(regions, errors, "uncertainty")
    best = region_order(regions, errors, "oracle")  # the queue's own regions in their best order
    return {
        "largest_region": int(sizes.max(initial=0)),
        "first5_uncertainty": float(errors_in_first(regions, errors, ids, FIRST_REGIONS)),
        "first5_voxels_uncertainty": float(np.isin(regions, ids[:FIRST_REGIONS]).sum()),
        "recall_uncertainty": _recall_at(*effort_curve(regions, errors, ids), roi_voxels, total),
        "first5_queue_oracle": float(errors_in_first(regions, errors, best, FIRST_REGIONS)),
    }


def case_row(prediction: Any, truth: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Figures of one predicted case against its ground truth (see the module docstring).

    The top-level queue figures are for the default review map (``PredictOptions().review_ranking``, as every
    prediction is ranked); ``review_maps`` holds the same figures for every map of the prediction, to choose the
    default on validation.
    """
    mask, probs = prediction.mask.array, prediction.probabilities.array
    maps = {k: v.array for k, v in prediction.maps.items()}
    ranking = PredictOptions().review_ranking(prediction)
    key = ranking.map_name
    roi = foreground_roi(mask)
    errors = (mask != truth) & roi
    total, roi_voxels = int(errors.sum()), int(roi.sum())
    by_map = {
        name: _queue_figures(region_label_image(u, mask, probs), errors, roi_voxels, total) for name, u in maps.items()
    }
    row: dict[str, Any] = {
        "dice": mean_dice(mask, truth, num_classes),
        "scores": ranking.case_scores,
        "regions": len(ranking.regions),
        "roi_voxels": roi_voxels,
        "roi_errors": total,
        "review_map": key,
        **by_map[key],
        "review_maps": by_map,
    }
    pieces = roi_pieces(roi, ranking.max_region_voxels)  # what a reader without the uncertainty reviews
    for order in ("random", "oracle"):
        seeds = range(RANDOM_SEEDS) if order == "random" else [0]
        first, voxels, curves = [], [], []
        for seed in seeds:
            ids = region_order(pieces, errors, order, seed)
            first.append(errors_in_first(pieces, errors, ids, FIRST_REGIONS))
            voxels.append(int(np.isin(pieces, ids[:FIRST_REGIONS]).sum()))
            curves.append(_recall_at(*effort_curve(pieces, errors, ids), roi_voxels, total))
        row[f"first5_{order}"] = float(np.mean(first))
        row[f"first5_voxels_{order}"] = float(np.mean(voxels))
        row[f"recall_{order}"] = np.mean(curves, axis=0).tolist()
    return row


def evaluate_model(
    model_dir: str | Path,
    test_ids: list[str],
    site: tuple[tuple[str, int], ...] = SIMULATED_SITE,
    progress: Progress = no_progress,
    device: str = "cpu",
    selection_shift: tuple[tuple[str, int], ...] = SELECTION_SHIFT,
) -> dict[str, Any]:
    """Rows for the model's validation cases (clean and under ``selection_shift``), the test cases and the test
    cases at the simulated site.

    Returns
    -------
    dict
        ``method``, ``site``, ``selection_shift`` and ``val`` / ``val_shift`` / ``test`` / ``site_test``:
        ``{case_id: row}`` (:func:`case_row`).
    """
    card = read_card(model_dir)
    data = card.training.get("data", {})
    folder = Path(data["dir"])
    num_classes, _ = num_classes_of(folder)
    method = load_model(model_dir, device)
    pairs = {c: (i, lab) for c, i, lab in case_pairs(folder)}
    val_ids = data.get("val_cases", [])
    jobs = [("val", c, ()) for c in val_ids] + [("val_shift", c, selection_shift) for c in val_ids]
    jobs += [("test", c, ()) for c in test_ids] + [("site_test", c, site) for c in test_ids]
    out: dict[str, Any] = {"method": card.method, "site": [list(s) for s in site]}
    out["selection_shift"] = [list(s) for s in selection_shift]
    out.update({split: {} for split in ("val", "val_shift", "test", "site_test")})
    for k, (split, case_id, shifts) in enumerate(jobs):
        progress(k, len(jobs), f"{split} {case_id}")
        image = load_image(pairs[case_id][0])
        truth = load_label(pairs[case_id][1], image, num_classes).array
        if shifts:
            spacing = np.sqrt((image.affine[:3, :3] ** 2).sum(axis=0))
            image = Volume(apply_site(image.array, case_id, shifts, spacing), image.affine)
        prediction = predict_volume(method, image, output_dtype="float32")
        out[split][case_id] = case_row(prediction, truth, num_classes)
    return out


def _score_table(rows: dict[str, dict[str, Any]], site_rows: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    dice = np.array([r["dice"] for r in rows.values()])
    table = {}
    for name in DESCRIPTIONS:
        if not all(name in r["scores"] for r in rows.values()):
            continue
        scores = np.array([r["scores"][name] for r in rows.values()])
        entry = {"spearman": spearman(scores, 1.0 - dice)}
        if site_rows:
            shifted = np.array([r["scores"][name] for r in site_rows.values()])
            flags = np.r_[np.zeros(scores.size, bool), np.ones(shifted.size, bool)]
            entry["site_auroc"] = auroc(np.r_[scores, shifted], flags)
        table[name] = entry
    return table


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Default case score chosen on validation (``choose_case_score``), every score on the test split, region
    figures. In the validation table ``site_auroc`` is the AUROC against the selection shift."""
    val = _score_table(result["val"], result.get("val_shift"))
    default = choose_case_score(
        {n: v["spearman"] for n, v in val.items()}, {n: v.get("site_auroc", np.nan) for n, v in val.items()}
    )
    test = _score_table(result["test"], result["site_test"])
    summary: dict[str, Any] = {"method": result["method"], "default_score": default, "val_scores": val}
    summary["test_scores"] = test
    for split in ("test", "site_test"):
        rows = list(result[split].values())
        summary[split] = {
            "dice": float(np.mean([r["dice"] for r in rows])),
            "largest_region": int(max(r["largest_region"] for r in rows)),
            **{f"first5_{o}": float(np.mean([r[f"first5_{o}"] for r in rows])) for o in (*ORDERS, "queue_oracle")},
            **{f"first5_voxels_{o}": float(np.mean([r[f"first5_voxels_{o}"] for r in rows])) for o in ORDERS},
            **{f"recall_{o}": np.mean([r[f"recall_{o}"] for r in rows], axis=0).tolist() for o in ORDERS},
        }
    summary["site_dice_drop"] = summary["test"]["dice"] - summary["site_test"]["dice"]
    summary["review_maps"] = {split: _map_table(result[split]) for split in ("val", "test", "site_test")}
    val_maps = summary["review_maps"]["val"]
    summary["best_review_map"] = max(val_maps, key=lambda n: val_maps[n]["first5_uncertainty"]) if val_maps else None
    return summary


def _map_table(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per review map: mean errors found in the first five regions of its queue and reviewed voxels there."""
    names = set.intersection(*(set(r["review_maps"]) for r in rows.values())) if rows else set()
    return {
        name: {
            key: float(np.mean([r["review_maps"][name][key] for r in rows.values()]))
            for key in ("first5_uncertainty", "first5_voxels_uncertainty", "first5_queue_oracle")
        }
        for name in sorted(names)
    }
