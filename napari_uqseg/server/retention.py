"""Retention: prediction outputs and failed job folders are removed by age and total size.

Kept forever: images (corrections point at them), corrections, model versions, the ledger (a prediction's
summary row stays; only its output files go). Removed: prediction output folders older than
``prediction_days`` or beyond ``prediction_gb`` in total (oldest first), folders of failed or cancelled
jobs older than ``failed_job_days``, and partial uploads left by a crash.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.server.disk_guard import tree_size
from napari_uqseg.server.uploads import remove_stale_uploads

DAY_S = 86400.0
GiB = 1024**3


@dataclass
class RetentionPolicy:
    """How long and how much is kept (``uqseg serve --keep-*``); ``None`` keeps without that bound."""

    prediction_days: float | None = 30.0
    prediction_gb: float | None = 50.0
    failed_job_days: float | None = 14.0
    every_s: float = 3600.0


def _prediction_folders(store: DataDir) -> list[tuple[float, int, Path]]:
    """``(mtime, bytes, folder)`` of every finished prediction folder, oldest first."""
    folders = [p for p in (store.root / "predictions").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted((p.stat().st_mtime, tree_size(p), p) for p in folders)


def prune(store: DataDir, policy: RetentionPolicy, now: float | None = None) -> dict[str, int]:
    """Apply ``policy`` once; returns counts of what was removed."""
    now = time.time() if now is None else now
    removed = {"predictions": 0, "jobs": 0, "uploads": remove_stale_uploads(store.root / "images")}
    folders = _prediction_folders(store)
    total = sum(size for _, size, _ in folders)
    for mtime, size, folder in folders:
        too_old = policy.prediction_days is not None and now - mtime > policy.prediction_days * DAY_S
        too_big = policy.prediction_gb is not None and total > policy.prediction_gb * GiB
        if not (too_old or too_big):
            break  # oldest first: the rest is younger and fits
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
        removed["predictions"] += 1
    if policy.failed_job_days is not None:
        rows = store.ledger.query("SELECT id, updated FROM jobs WHERE state IN ('failed', 'cancelled')")
        for row in rows:
            folder = store.job_dir(row["id"])
            if folder.is_dir() and now - row["updated"] > policy.failed_job_days * DAY_S:
                shutil.rmtree(folder, ignore_errors=True)
                removed["jobs"] += 1
    return removed


class RetentionThread:
    """Runs ``prune`` at start and every ``policy.every_s`` seconds until ``stop``."""

    def __init__(self, store: DataDir, policy: RetentionPolicy) -> None:
        self.store, self.policy = store, policy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                prune(self.store, self.policy)
            except Exception as exc:  # noqa: BLE001  (retention must never stop the server)
                print(f"retention: {exc.__class__.__name__}: {exc}", flush=True)
            if self._stop.wait(self.policy.every_s):
                return

    def stop(self) -> None:
        self._stop.set()
