"""Ratios of side-by-side timings: the median of each pair's ratio, so a load spike spoils one pair, not both sides."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median over ``i`` of ``numerators[i] / denominators[i]`` (timings taken alternately, pair by pair).

    Raises ``ValueError`` when the sequences differ in length or are empty.
    """
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError(f"need pairs of timings, got {len(numerators)} and {len(denominators)}")
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))
