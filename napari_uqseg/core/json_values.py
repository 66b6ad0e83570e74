"""Strict-JSON copies of values: numpy scalars and arrays become Python, NaN and Infinity become ``None``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def clean_json(value: Any) -> Any:
    """A copy of ``value`` fit for strict JSON: dicts (keys as str), lists and tuples walked, numpy values -> Python,
    NaN/inf -> None, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
