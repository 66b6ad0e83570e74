"""The v1 wire protocol's numpy side: version, id formats, output names and map quantisation."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from napari_uqseg.core.errors import InputError

#: bumped on any incompatible change of routes, JSON fields or payloads
PROTOCOL_VERSION = 1

#: server-made ids (predictions, corrections, jobs): uuid4 hex
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
#: images are addressed by the sha256 of their uploaded bytes
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
#: model names, version names ("v3"), output names, client keys: no dots or slashes, so never a path
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
VERSION_PATTERN = re.compile(r"^v[1-9][0-9]{0,5}$")

#: the two outputs every prediction has besides its uncertainty maps
BASE_OUTPUTS = ("mask", "probabilities")

#: test-time augmentation modes a prediction may ask for (``engine.tta.TTA_MODES``; option ``tta``)
TTA_MODES = ("none", "flips", "flips+intensity")

#: uint8 levels used for quantised probability/uncertainty maps (value = level * scl_slope)
LEVELS = 255


def check_id(value: str, kind: str, pattern: re.Pattern[str] = ID_PATTERN) -> str:
    """Return ``value`` if it matches ``pattern``; otherwise InputError naming ``kind``.

    Raises
    ------
    InputError
        ``value`` is not a well-formed id (path-like, too long, wrong characters).
    """
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InputError(kind, f"malformed id {str(value)[:80]!r}")
    return value


def sha256_hex(data: bytes) -> str:
    """Content address of uploaded bytes (64 lowercase hex characters)."""
    return hashlib.sha256(data).hexdigest()


def map_scale(array: np.ndarray) -> float:
    """``scl_slope`` that maps ``[0, max(array)]`` onto uint8 levels 0..255 (max error ``scale / 2``).

    Probabilities get ``1/255``; entropies (up to ``ln C`` nats) a slope from their own maximum.
    """
    top = float(np.max(array)) if np.size(array) else 0.0
    return max(top, 1.0) / LEVELS
