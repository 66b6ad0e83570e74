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

The default per method was chosen on the validation cases each model's training held out, never on test
cases (``uqseg loop methods``; figures in docs/loop.md). :func:`case_score_for` is the one entry
point a worklist uses; ``core.review.build_review`` stores its value in ``ReviewRanking.case_score``.
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

#: default case score per method: the highest Spearman(score, 1 - Dice) on the model's validation cases
#: (``uqseg loop methods``; docs/loop.md, "Case score"). Only methods measured so far are listed.
DEFAULT_CASE_SCORE = {
    "deterministic": "expected_error_ratio",
}
#: for a method not in :data:`DEFAULT_CASE_SCORE` (not yet measured): defined for every method
FALLBACK_CASE_SCORE = "expected_dice"


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


def case_score_for(scores: dict[str, float], method: str | None) -> tuple[str, float]:
    """``(name, value)`` of the method's default case score among ``scores`` (from :func:`case_scores`).

    A method whose default needs a map it did not return falls back to ``expected_dice``.
    """
    name = default_case_score(method)
    if name not in scores:
        name = FALLBACK_CASE_SCORE
    return name, float(scores[name])
