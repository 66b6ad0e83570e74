"""A simulated new site: one fixed combination of ``core.shifts`` applied to every case of that site.

A scanner or protocol change is not one corruption but several at once; the review-loop benchmark uses
:data:`SIMULATED_SITE` (a bias field, a contrast curve, blur and lower resolution) on the site's cases only,
seeded per case so that each case of the site looks the same on every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_uqseg.core.shifts import apply_shift, case_seed, parse_shift

#: the review-loop benchmark's new site: ``(shift, severity)`` applied in this order
SIMULATED_SITE: tuple[tuple[str, int], ...] = (("bias", 3), ("contrast", 2), ("blur", 1), ("resolution", 2))


def parse_site(text: str, source: str = "--site") -> tuple[tuple[str, int], ...]:
    """``"bias:4,contrast:3"`` -> ``(("bias", 4), ("contrast", 3))`` (InputError naming ``source`` on a bad item)."""
    return tuple(parse_shift(item.strip(), source) for item in str(text).split(",") if item.strip())


def apply_site(
    image: np.ndarray,
    case_id: str,
    shifts: Sequence[tuple[str, int]] = SIMULATED_SITE,
    spacing: Sequence[float] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The raw image as the simulated site would have acquired it: every shift in turn, seeded per case.

    Returns a float32 array of the image's shape.
    """
    out = np.asarray(image, dtype=np.float32)
    for k, (name, severity) in enumerate(shifts):
        out = apply_shift(out, name, severity, case_seed(seed + k, case_id), spacing)
    return out
