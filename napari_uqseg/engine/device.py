"""Device selection: GPU when present and asked for, CPU otherwise."""

from __future__ import annotations

import torch

from napari_uqseg.core.errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; ``"cpu"``; ``"cuda"``/``"cuda:N"`` (error if absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("--device", f"'{name}' was asked for but no CUDA GPU is available")
        return torch.device(name)
    raise InputError("--device", f"unknown device '{name}' (use auto, cpu or cuda)")
