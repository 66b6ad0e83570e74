"""Honest fine-tuning figures: which corrections are held back, and whether a new version should be promoted.

A fine-tune is judged on corrections it never trained on (the held-back share) and on the validation cases
the original training held out (did it forget?). Plain Python, so both viewers can show the verdict.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

from napari_uqseg.core.errors import InputError

#: default optimisation steps of a fine-tune (the engine, the server and both viewers)
FINETUNE_ITERATIONS = 100
#: default share of submitted corrections that a fine-tune never trains on
HELD_BACK_FRACTION = 0.2
#: largest drop of mean Dice on the original validation cases a promoted version may show
MAX_REGRESSION = 0.005


def is_held_back(correction_id: str, fraction: float = HELD_BACK_FRACTION) -> bool:
    """Whether a correction belongs to the held-back share: a fixed property of its id.

    ``crc32(id) / 2**32 < fraction``: the same correction is held back in every fine-tune, so a held-back
    correction is never trained on by any version.
    """
    if not 0.0 <= fraction < 1.0:
        raise InputError("held_back_fraction", f"must be in [0, 1), got {fraction}")
    return zlib.crc32(str(correction_id).encode()) / 2**32 < fraction


def split_held_back(ids: list[str], fraction: float = HELD_BACK_FRACTION) -> tuple[list[str], list[str]]:
    """``(train ids, held-back ids)`` in input order, by :func:`is_held_back`.

    A fine-tune needs something to train on: if the hash holds back every id (e.g. a single correction),
    the one with the largest hash is trained on instead; that is the only exception to the fixed split.
    """
    held = [i for i in ids if is_held_back(i, fraction)]
    if held and len(held) == len(ids):
        held.remove(max(ids, key=lambda i: zlib.crc32(str(i).encode())))
    keep = set(held)
    return [i for i in ids if i not in keep], held


def _delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> float:
    if not before or not after:
        return float("nan")
    b, a = before.get("mean_dice"), after.get("mean_dice")
    if b is None or a is None or not (math.isfinite(b) and math.isfinite(a)):
        return float("nan")
    return float(a) - float(b)


def recommend(
    held_back: dict[str, Any], regression: dict[str, Any], max_regression: float = MAX_REGRESSION
) -> dict[str, Any]:
    """Promote or not, with the reason in plain words.

    Parameters
    ----------
    held_back : dict
        ``{"before": {"mean_dice": ..}, "after": {"mean_dice": ..}}`` on the held-back corrections (empty
        dicts when none were held back).
    regression : dict
        The same on the original validation cases (empty when they could not be read).
    max_regression : float
        Largest allowed drop of validation mean Dice.

    Returns
    -------
    dict
        ``promote`` (bool), ``reason`` (str), ``held_back_gain`` and ``regression_change`` (float; None
        when unknown).
    """
    gain = _delta(held_back.get("before"), held_back.get("after"))
    change = _delta(regression.get("before"), regression.get("after"))
    if math.isnan(gain):
        promote, reason = False, "don't promote: no held-back corrections to measure the gain on"
    elif math.isnan(change):
        promote, reason = False, "don't promote: the original validation cases could not be checked"
    elif gain <= 0:
        promote, reason = False, f"don't promote: held-back Dice did not rise ({gain:+.4f})"
    elif change < -max_regression - 1e-9:  # tolerance: Dice differences carry round-off
        promote, reason = False, f"don't promote: validation Dice fell {change:+.4f} (limit -{max_regression:.3f})"
    else:
        promote = True
        reason = f"promote: held-back Dice {gain:+.4f}, validation Dice {change:+.4f}"
    known = {"held_back_gain": gain, "regression_change": change}
    return {"promote": promote, "reason": reason, **{k: None if math.isnan(v) else v for k, v in known.items()}}


#: how each ``loss_mask`` mode trained a partial correction, in words for the viewers
_PARTIAL_TRAINING = {
    "confident": "on the regions marked done plus the voxels the model was sure of",
    "reviewed": "on the regions marked done only",
}


def partial_corrections_text(loss_mask: dict[str, Any] | None) -> str:
    """What a fine-tune trained its partial corrections on, in plain words (``""`` when none was partial).

    ``loss_mask`` is the job result's ``{"mode": ..., "partial": [correction ids]}``.
    """
    mode, partial = (loss_mask or {}).get("mode"), list((loss_mask or {}).get("partial") or [])
    if not partial or mode not in _PARTIAL_TRAINING:
        return ""
    count = f"{len(partial)} partial correction{'s' if len(partial) != 1 else ''}"
    return f"{count} trained {_PARTIAL_TRAINING[mode]}."
