"""The ``--tta`` option shared by ``uqseg predict``, ``evaluate`` and ``conformal``."""

from __future__ import annotations

import argparse

from napari_uqseg.core.wire import TTA_MODES as TTA_CHOICES


def add_tta_argument(parser: argparse.ArgumentParser, multiple: bool = False) -> None:
    """``--tta MODE`` (or, with ``multiple``, ``--tta MODE [MODE ...]``, default ``none``)."""
    help_text = (
        "test-time augmentation: none; flips (the original plus one flip per axis, pooled as samples); "
        "flips+intensity (also contrast x 1.1 and x 0.9)"
    )
    if multiple:
        parser.add_argument("--tta", nargs="+", choices=TTA_CHOICES, default=["none"], help=f"{help_text}; several")
    else:
        parser.add_argument("--tta", choices=TTA_CHOICES, default="none", help=help_text)
