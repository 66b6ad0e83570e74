"""Recalibrate a fine-tuned version's volume intervals and conformal masks on cases it never trained on.

Called by ``engine.finetune`` after training: the new weights are calibrated on the held-back corrections
plus the original validation cases (``core.recalibration`` says why, and what happens with too few), for
``"none"`` and every TTA mode the parent was calibrated for, each at the parent's risk. The entries go into
the new version's ``uq_calibration.json`` (``engine.uq_calibration``).
"""

from __future__ import annotations

from typing import Any

from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.recalibration import MIN_CALIBRATION_CASES, recalibration_note
from napari_uqseg.engine.tta import tta_from_key, with_tta
from napari_uqseg.engine.uq_calibration import calibration_records, fit_entry, save_entry

#: outer/inner mask risk of a mode the parent had no calibration for
DEFAULT_RISK = 0.05


def modes_to_calibrate(parent_calibration: dict[str, Any] | None) -> dict[str, float]:
    """TTA key -> risk: ``"none"`` always, plus each mode the parent was calibrated for, at the parent's risk."""
    entries = (parent_calibration or {}).get("entries") or {}
    modes = {"none": DEFAULT_RISK}
    for key, entry in entries.items():
        modes[key] = float(((entry or {}).get("masks") or {}).get("risk", DEFAULT_RISK))
    return modes


def recalibrate(
    method: Any,
    parent_calibration: dict[str, Any] | None,
    held_back: list[Any],
    validation: list[Any],
    min_cases: int = MIN_CALIBRATION_CASES,
    enabled: bool = True,
    progress: Progress = no_progress,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Calibration entries of the fine-tuned ``method`` and the note its card keeps.

    Parameters
    ----------
    method : UQMethod
        The fine-tuned method (new weights).
    parent_calibration : dict or None
        The parent version's ``uq_calibration.json`` (which TTA modes and risks to calibrate).
    held_back, validation : list of CorrectedCase
        Held-back corrections and original validation cases (raw image, label on its grid).
    min_cases : int
        Fewer cases than this: no calibration (``core.recalibration``).
    enabled : bool
        ``False``: no calibration, and the note says it was not asked for.

    Returns
    -------
    tuple
        ``(entries by TTA key, note)``; ``entries`` is empty when the version stays uncalibrated.
    """
    modes = modes_to_calibrate(parent_calibration)
    note = recalibration_note(
        [c.case_id for c in held_back], [c.case_id for c in validation], sorted(modes), min_cases, enabled
    )
    if note["status"] != "recalibrated":
        return {}, note
    cases = [(c.case_id, c.image, c.label.array) for c in (*held_back, *validation)]
    entries = {}
    for key, risk in sorted(modes.items()):
        progress(1, 1, f"recalibrating intervals and contours (TTA {key})")  # after training: stays at 100 %
        records = calibration_records(with_tta(method, tta_from_key(key)), cases)
        entries[key] = {**fit_entry(records, risk), "held_back": note["held_back"]}
    return entries, note


def store_entries(model_dir: Any, entries: dict[str, dict[str, Any]]) -> None:
    """Write ``entries`` into ``model_dir``'s ``uq_calibration.json`` (one atomic write per entry)."""
    for key, entry in entries.items():
        save_entry(model_dir, key, entry)
