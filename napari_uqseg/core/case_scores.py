"""The case score: one number per case, higher = more likely a failed segmentation, for the worklist.

Every score reads what the prediction says about its own segmentation (numpy only):

- ``expected_dice``: 1 - the Dice the pooled probabilities expect for the predicted mask, per foreground
  class ``2 sum(p_c [m = c]) / (sum(p_c) + |m = c|)``, averaged over the classes predicted or probable.
- ``expected_error_ratio``: expected wrong voxels ``sum(1 - max_c p_c)`` in the ROI per predicted foreground
  voxel (about twice ``1 - Dice`` when the probabilities are calibrated).
- ``mean_uncertainty``: mean of the review map in the ROI (the earlier case score).
- ``volume_spread``: ``sum(class_std)`` in the ROI per predicted foreground voxel: how much the samples'
  volumes can disagree, relative to the volume (sampling methods only).
- ``mutual_information_ratio``: ``sum(mutual information)`` in the ROI per predicted foreground voxel.

A model's default is chosen on the validation cases its training held out, never on test cases, and stored in
its card (``uqseg loop methods --store-choices``; rule: :func:`choose_case_score`; figures in docs/loop.md).
:func:`case_score_for` is the one entry point a worklist uses; ``core.review.build_review`` stores its value in
``ReviewRanking.case_score``.
"""

from __future__ import annotations

import numpy as np

from napari_uqseg.core.errors import InputError

#: score name -> what it measures, as shown to users (the worklist's "reason")
DESCRIPTIONS = {
    "expected_dice": "1 - Dice the probabilities expect for the mask",
    "expected_error_ratio": "expected wrong voxels per segmented voxel",
    "mean_uncertainty": "mean uncertainty around the segmentation",
    "volume_spread": "spread of the samples' volumes per segmented voxel",
    "mutual_information_ratio": "model disagreement per segmented voxel",
}

#: default case score per method, for a model without a stored choice (docs/loop.md, "Case score": the choice
#: of every plateau model of this method on the hippocampus data)
DEFAULT_CASE_SCORE = {
    "deterministic": "expected_error_ratio",
    "mc_dropout": "expected_error_ratio",
    "masksembles": "mean_uncertainty",
    "checkpoint_ensemble": "mean_uncertainty",
}
#: for a method not in :data:`DEFAULT_CASE_SCORE`: defined for every method
FALLBACK_CASE_SCORE = "expected_dice"
#: a default case score must tell shifted cases from clean ones at least this well (EVALUATION.md's target)
MIN_SHIFT_AUROC = 0.8


def _foreground_voxels(mask: np.ndarray) -> int:
    return max(1, int(np.count_nonzero(mask)))


def expected_dice_score(probabilities: np.ndarray, mask: np.ndarray) -> float:
    """``1 -`` mean over foreground classes of the soft Dice between ``p_c`` and ``mask == c``.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(C, *S)`` mean class probabilities.
    mask : np.ndarray
        ``(*S)`` predicted labels.

    Returns
    -------
    float
        In ``[0, 1]``; classes with neither predicted voxels nor probability mass (< 0.5 voxel) are skipped,
        0.0 if every class is skipped.
    """
    dices = []
    for c in range(1, probabilities.shape[0]):
        p = np.asarray(probabilities[c], dtype=np.float64)
        m = mask == c
        denominator = float(p.sum()) + float(m.sum())
        if denominator < 0.5:
            continue
        dices.append(2.0 * float(p[m].sum()) / denominator)
    return 1.0 - float(np.mean(dices)) if dices else 0.0


def case_scores(
    probabilities: np.ndarray, mask: np.ndarray, maps: dict[str, np.ndarray], roi: np.ndarray, review_map: str
) -> dict[str, float]:
    """Every case score this prediction supports.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(C, *S)`` mean class probabilities.
    mask : np.ndarray
        ``(*S)`` predicted labels.
    maps : dict of str to np.ndarray
        ``(*S)`` uncertainty maps by name (``class_std`` and ``mutual_information`` give two more scores).
    roi : np.ndarray
        ``(*S)`` bool region of interest (``core.review.foreground_roi``).
    review_map : str
        Map behind ``mean_uncertainty``.

    Returns
    -------
    dict of str to float
        Score name -> value (see :data:`DESCRIPTIONS`).
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != np.ndim(mask) + 1 or probabilities.shape[1:] != np.shape(mask):
        raise InputError("probabilities", f"shape {probabilities.shape} does not fit mask shape {np.shape(mask)}")
    if review_map not in maps:
        raise InputError("review_map", f"{review_map!r} is not among the maps {sorted(maps)}")
    fg = _foreground_voxels(mask)
    wrong = 1.0 - np.asarray(probabilities, dtype=np.float64).max(axis=0)
    scores = {
        "expected_dice": expected_dice_score(probabilities, mask),
        "expected_error_ratio": float(wrong[roi].sum()) / fg,
        "mean_uncertainty": float(np.asarray(maps[review_map], dtype=np.float64)[roi].mean()) if roi.any() else 0.0,
    }
    if "class_std" in maps:
        scores["volume_spread"] = float(np.asarray(maps["class_std"], dtype=np.float64)[roi].sum()) / fg
    if "mutual_information" in maps:
        scores["mutual_information_ratio"] = float(np.asarray(maps["mutual_information"], np.float64)[roi].sum()) / fg
    return scores


def default_case_score(method: str | None) -> str:
    """Name of the default case score of ``method`` (validation-chosen; fallback for other methods)."""
    return DEFAULT_CASE_SCORE.get(method or "", FALLBACK_CASE_SCORE)


def case_score_for(scores: dict[str, float], method: str | None, model_default: str | None = None) -> tuple[str, float]:
    """``(name, value)`` of the default case score among ``scores`` (from :func:`case_scores`).

    The model's own choice (``model_default``, stored in its card) when ``scores`` has it, else the method's
    default, else :data:`FALLBACK_CASE_SCORE`.
    """
    for name in (model_default, default_case_score(method)):
        if name in scores:
            return name, float(scores[name])
    return FALLBACK_CASE_SCORE, float(scores[FALLBACK_CASE_SCORE])


def choose_case_score(spearman: dict[str, float], shift_auroc: dict[str, float]) -> str:
    """The default case score from validation figures: the best ranker of failures among the shift detectors.

    Parameters
    ----------
    spearman : dict of str to float
        Score name -> Spearman(score, 1 - Dice) on the validation cases.
    shift_auroc : dict of str to float
        Score name -> AUROC of the score for telling the validation cases under a shift from the clean ones
        (empty: not measured, the choice is by Spearman alone).

    Returns
    -------
    str
        The highest Spearman among the scores with AUROC >= :data:`MIN_SHIFT_AUROC`; if no score reaches it,
        the highest AUROC (a worklist that misses a new site is worse than one that ranks failures at chance).
    """

    def finite(value: float | None) -> float:
        return float(value) if value is not None and np.isfinite(value) else -2.0

    if not spearman:
        raise InputError("spearman", "no case score to choose from")
    measured = any(finite(v) >= 0.0 for v in shift_auroc.values())
    detectors = [n for n in spearman if not measured or finite(shift_auroc.get(n)) >= MIN_SHIFT_AUROC]
    if detectors:
        return max(detectors, key=lambda n: finite(spearman[n]))
    return max(spearman, key=lambda n: finite(shift_auroc.get(n)))
