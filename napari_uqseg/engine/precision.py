"""Arithmetic precision of the network's forward pass at inference (the statistics stay float32).

``bfloat16`` runs convolutions and the layers between them under ``torch.autocast`` in bfloat16; every
sample's softmax and all blending are float32 (``UQMethod.probabilities`` casts the logits back). On a CPU
with native bfloat16 instructions (AVX512-BF16 or AMX) this is several times faster than float32 at equal
masks (docs/benchmarks.md, "CPU precision"); elsewhere bfloat16 is emulated and slower, so ``auto``
chooses it only where it is native. On CUDA, ``auto`` stays float32.
"""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.predict_options import PRECISIONS

#: CPU flags (Linux ``/proc/cpuinfo``) of native bfloat16 arithmetic
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (read from ``/proc/cpuinfo``; ``False`` where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``float32`` or ``bfloat16`` for ``precision`` (``auto``, ``float32``, ``bfloat16``) on ``device``.

    Raises
    ------
    InputError
        Unknown precision.
    """
    if precision not in PRECISIONS:
        raise InputError("precision", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    cpu = torch.device(device).type == "cpu"
    return "bfloat16" if cpu and cpu_has_native_bfloat16() else "float32"


def forward_precision(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """Context in which network forwards run at ``precision`` (resolved first) on ``device``."""
    if resolve_precision(precision, device) == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
