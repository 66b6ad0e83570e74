"""Member check: does every sample of a multi-sample method segment every class?

An ensemble member, Masksembles mask, checkpoint or head that never predicts a class makes the pooled
prediction sit at confidence ~(M-1)/M wherever that class is: the maps then show a broken member, not
uncertainty about the image. ``uqseg train`` runs this check on the validation cases it held out and records
it in the model card (``training.member_check``) with a warning per weak sample (what it found: docs/methods.md,
"Member check").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from napari_uqseg.core.metrics import dice_per_class
from napari_uqseg.engine.data import Case
from napari_uqseg.engine.temperature import calibration_window, recorded_logits

if TYPE_CHECKING:
    from napari_uqseg.engine.methods.base import UQMethod

#: a sample is weak on a class when its Dice is below this fraction of the best sample's
WEAK_FRACTION = 0.5
#: classes that even the best sample segments worse than this say nothing about the members
MIN_BEST_DICE = 0.2


@torch.no_grad()
def member_dice(method: UQMethod, cases: list[Case]) -> tuple[np.ndarray, float]:
    """Dice of every sample, before pooling, on one ground-truth-centred window per case.

    Parameters
    ----------
    cases : list of Case
        Normalised labelled cases; each contributes the patch-sized window the temperature fit uses.

    Returns
    -------
    (np.ndarray, float)
        ``(M, C - 1)`` mean Dice per sample and foreground class, and the share of ground-truth
        bounding-box voxels where exactly one sample disagrees with all others (0 when ``M < 3``).
    """
    method.eval()
    dice, dissent = [], []
    classes = method.net_config.num_classes
    for case in cases:
        image, label, roi = calibration_window(case, tuple(method.patch_size))
        with recorded_logits(method) as records:
            method.window_statistics(image.to(method.device))
        preds = torch.cat(records).argmax(1).numpy()  # (M, *patch)
        dice.append([dice_per_class(p, label, classes) for p in preds])
        agree = (preds[:, None] == preds[None]).sum(1)  # samples agreeing with sample m, m included
        dissent.append(float(((agree == 1).sum(0) == 1)[roi].mean()) if len(preds) > 2 else 0.0)
    return np.mean(dice, axis=0), float(np.mean(dissent))


def weak_members(dice: np.ndarray, labels: dict[str, str] | None = None) -> list[str]:
    """One message per class that some samples segment below ``WEAK_FRACTION`` of the best sample's Dice.

    ``dice``: ``(M, C - 1)`` as from :func:`member_dice`; ``labels``: class index (str) -> name.
    """
    messages = []
    for c, column in enumerate(np.asarray(dice, dtype=np.float64).T, start=1):
        best = float(column.max())
        weak = np.flatnonzero(column < WEAK_FRACTION * best)
        if best < MIN_BEST_DICE or not len(weak):
            continue
        name = (labels or {}).get(str(c), f"class {c}")
        messages.append(
            f"{name!r}: sample(s) {', '.join(map(str, weak))} of {len(column)} at Dice "
            f"{column[weak].min():.2f}-{column[weak].max():.2f} against {best:.2f} for the best sample; "
            "the pooled uncertainty there reflects these samples, not the image"
        )
    return messages


def check_members(method: UQMethod, cases: list[Case], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """:func:`member_dice` and :func:`weak_members` as a JSON-able record for the model card."""
    dice, dissent = member_dice(method, cases)
    return {
        "cases": len(cases),
        "dice_per_sample_and_class": dice.round(4).tolist(),
        "one_sample_dissents_share_of_roi": round(dissent, 4),
        "warnings": weak_members(dice, labels),
    }
