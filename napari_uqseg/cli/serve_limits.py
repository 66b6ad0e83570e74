"""``uqseg serve`` options for load bounds, disk reserve and retention (see docs/reliability.md)."""

from __future__ import annotations

import argparse
from typing import Any

LOAD_OPTIONS = {
    "max_requests": (int, "requests handled at once; more get 503 + Retry-After"),
    "max_queued_predictions": (int, "predictions waiting for the device; more get 503"),
    "max_queued_jobs": (int, "queued jobs; more get 503"),
    "max_forward_passes": (int, "cost cap of one prediction: sliding windows x forward passes per window"),
    "max_sw_batch_size": (int, "largest sw_batch_size a client may ask for"),
    "prediction_wait_s": (float, "longest a prediction waits for the device before 503"),
    "min_free_mb": (int, "free disk space kept in the data folder; writes below get 507"),
}
RETENTION_OPTIONS = {
    "prediction_days": (float, "delete prediction outputs older than this (0: keep)"),
    "prediction_gb": (float, "delete the oldest prediction outputs beyond this total (0: no bound)"),
    "failed_job_days": (float, "delete folders of failed/cancelled jobs older than this (0: keep)"),
}


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-requests`` ... and ``--keep-prediction-days`` ... with the library defaults."""
    from napari_uqseg.server.load_limits import LoadLimits
    from napari_uqseg.server.retention import RetentionPolicy

    load, keep = LoadLimits(), RetentionPolicy()
    for name, (kind, text) in LOAD_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=kind, default=getattr(load, name), help=f"{text} (default %(default)s)")
    for name, (kind, text) in RETENTION_OPTIONS.items():
        flag = "--keep-" + name.replace("_", "-")
        parser.add_argument(flag, type=kind, default=getattr(keep, name), help=f"{text} (default %(default)s)")


def load_options(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(LoadLimits, RetentionPolicy)`` from the parsed options."""
    from napari_uqseg.server.load_limits import LoadLimits
    from napari_uqseg.server.retention import RetentionPolicy

    load = LoadLimits(**{name: getattr(args, name) for name in LOAD_OPTIONS})
    keep = {name: getattr(args, f"keep_{name}") or None for name in RETENTION_OPTIONS}
    return load, RetentionPolicy(**keep)
