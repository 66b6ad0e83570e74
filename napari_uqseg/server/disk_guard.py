"""Disk space: a free-space check before every write (507 rather than a half-written folder), and the
recognition of a full disk met anyway (``ENOSPC`` from a write, SQLite's "database or disk is full")."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from napari_uqseg.core.errors import UQSegError

MiB = 1024 * 1024
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class StorageFullError(UQSegError):
    """Not enough free disk space for a write (HTTP 507); nothing was stored."""

    def __init__(self, problem: str) -> None:
        self.source, self.problem = "disk", problem
        super().__init__(f"disk: {problem}")


def free_bytes(path: Path) -> int:
    """Free bytes, for an unprivileged user, on the filesystem holding ``path``."""
    return int(shutil.disk_usage(path).free)


def ensure_free(path: Path, needed: int, reserve_mb: int) -> None:
    """Raise ``StorageFullError`` unless ``needed`` bytes fit while ``reserve_mb`` MiB stay free.

    Parameters
    ----------
    path : Path
        A folder on the filesystem to be written.
    needed : int
        Bytes about to be written.
    reserve_mb : int
        Space kept free for the ledger, logs and the system.
    """
    free = free_bytes(path)
    if free - max(0, needed) < reserve_mb * MiB:
        raise StorageFullError(
            f"{free // MiB} MiB free, {max(0, needed) // MiB + 1} MiB needed and {reserve_mb} MiB kept in reserve; "
            "free space in the data folder (see the retention options of `uqseg serve`)"
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) says the disk or quota is full."""
    while exc is not None:
        if isinstance(exc, StorageFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) if Path(path).exists() else 0
