"""A fine-tuned version's conformal calibration: what it was fitted on, or why it has none (plain Python).

A fine-tune changes the model's probabilities, so the parent's calibration (``uq_calibration.json``) says
nothing about the new version. The fine-tune refits it on cases the new version never trained on: its
held-back corrections and the original validation cases (why: docs/methods.md, "Recalibration after a
fine-tune"). With fewer than :data:`MIN_CALIBRATION_CASES` such cases the version gets no calibration at
all, and its card says so in plain words; both viewers show :func:`recalibration_text` of the stored note.
"""

from __future__ import annotations

import math
from typing import Any

#: the interval level a calibration must at least be able to bound
REQUIRED_LEVEL = 0.9


def min_cases_for(level: float) -> int:
    """Fewest calibration cases for which a split-conformal ``level`` interval is finite.

    The ``ceil((n + 1) level)``-th smallest of ``n`` scores exists only when that rank is ``<= n``
    (``core.conformal.conformal_quantile``): 9 cases for 90 %, 19 for 95 %.
    """
    n = 1
    while math.ceil(round((n + 1) * level, 9)) > n:
        n += 1
    return n


#: fewest cases a fine-tune recalibrates on: below this even the 90 % volume interval would be unbounded
MIN_CALIBRATION_CASES = min_cases_for(REQUIRED_LEVEL)


def recalibration_note(
    held_back: list[str],
    validation: list[str],
    modes: list[str],
    min_cases: int = MIN_CALIBRATION_CASES,
    enabled: bool = True,
) -> dict[str, Any]:
    """The record a fine-tuned version keeps about its calibration (card ``training.uq_calibration``).

    Parameters
    ----------
    held_back, validation : list of str
        Ids of the held-back corrections and of the original validation cases available to calibrate on.
    modes : list of str
        TTA keys calibrated (or that would have been).
    min_cases : int
        Fewest cases a calibration is fitted on.
    enabled : bool
        ``False`` when the fine-tune was asked not to recalibrate.

    Returns
    -------
    dict
        ``status`` (``"recalibrated"`` or ``"not calibrated"``), ``held_back`` and ``validation`` ids,
        ``cases`` (their count), ``min_cases``, ``tta`` (keys) and ``text`` (:func:`recalibration_text`).
    """
    cases = len(held_back) + len(validation)
    status = "recalibrated" if enabled and cases >= min_cases else "not calibrated"
    note: dict[str, Any] = {
        "status": status,
        "held_back": list(held_back),
        "validation": list(validation),
        "cases": cases,
        "min_cases": int(min_cases),
        "tta": list(modes) if status == "recalibrated" else [],
        "enabled": bool(enabled),
    }
    note["text"] = recalibration_text(note)
    return note


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def recalibration_text(note: dict[str, Any] | None) -> str:
    """The calibration line of a version card in plain words (``""`` when ``note`` is empty)."""
    if not note:
        return ""
    found = f"{_count(len(note.get('held_back', [])), 'held-back correction')} + " + _count(
        len(note.get("validation", [])), "validation case"
    )
    if note.get("status") == "recalibrated":
        modes = ", ".join(note.get("tta", [])) or "none"
        return f"Conformal calibration refitted for this version on {found} (TTA: {modes})."
    if not note.get("enabled", True):
        why = "the fine-tune was asked not to recalibrate"
    else:
        why = f"only {found}; a calibration needs at least {note.get('min_cases', MIN_CALIBRATION_CASES)}"
    return (
        f"Not calibrated: {why}. This version's volumes have no intervals and it draws no conformal contours "
        "(the parent's calibration does not carry over: it was fitted on the parent's probabilities). "
        "Calibrate it with `uqseg conformal` on labelled cases it never trained on."
    )


def version_calibration_tag(metrics: dict[str, Any]) -> str:
    """``" (not calibrated)"`` for a fine-tuned version whose recalibration did not happen, else ``""``.

    ``metrics`` is the version's metrics (``ModelVersion.metrics``); versions without a note (trained or
    imported ones, calibrated or not by ``uqseg conformal``) get no tag.
    """
    note = (metrics or {}).get("uq_calibration") or {}
    return " (not calibrated)" if note.get("status") == "not calibrated" else ""
