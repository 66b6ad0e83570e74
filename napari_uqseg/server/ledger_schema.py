"""Ledger tables added after the first release, and the columns added to older tables (in place, idempotent).

``actor`` columns name the user who did a thing (``server.users``); ``payload_sha`` makes a correction's
``client_key`` retry comparable with the first submission; ``reviewed_voxels`` counts the voxels of a
correction's reviewed mask (``core.reviewed``; NULL when it has none: the whole case was reviewed).
"""

from __future__ import annotations

import sqlite3

SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_sha TEXT NOT NULL UNIQUE,
    created REAL NOT NULL, revoked REAL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}');
"""

#: table -> (column, SQL type and default) added to ledgers made by earlier versions
ADDED_COLUMNS = {
    "corrections": (
        ("payload_sha", "TEXT NOT NULL DEFAULT ''"),
        ("actor", "TEXT NOT NULL DEFAULT ''"),
        ("reviewed_voxels", "INTEGER"),  # NULL: the whole case was reviewed (no reviewed mask)
    ),
    "jobs": (("actor", "TEXT NOT NULL DEFAULT ''"),),
    "serving_history": (("actor", "TEXT NOT NULL DEFAULT ''"),),
    "versions": (("actor", "TEXT NOT NULL DEFAULT ''"),),
}


def add_missing_columns(db: sqlite3.Connection) -> None:
    """Create the v2 tables and add missing ``ADDED_COLUMNS`` (safe to run at every start, by any process)."""
    db.executescript(SCHEMA_V2)
    for table, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name not in present:
                try:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it a moment ago
                    if "duplicate column" not in str(exc):
                        raise
