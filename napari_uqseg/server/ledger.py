"""The server's durable state in SQLite (WAL): predictions, corrections, model versions, serving, jobs.

The ledger is the source of truth; files (images, outputs, corrections, model folders) are written
atomically *before* the row that points at them, so a row never names a missing file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from napari_uqseg.core.errors import ConflictError, InputError, NotFoundError
from napari_uqseg.core.records import JobStatus, ModelSummary, ModelVersion
from napari_uqseg.server.ledger_schema import add_missing_columns

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY, image TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
    method TEXT NOT NULL, created REAL NOT NULL, summary TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (
    id TEXT PRIMARY KEY, client_key TEXT UNIQUE, prediction_id TEXT NOT NULL, image TEXT NOT NULL,
    model TEXT NOT NULL, version TEXT NOT NULL, review TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    model TEXT NOT NULL, version TEXT NOT NULL, method TEXT NOT NULL, parent TEXT,
    created TEXT NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (model, version));
CREATE TABLE IF NOT EXISTS serving_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, version TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, params TEXT NOT NULL,
    state TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '',
    eta_s REAL, attempts INTEGER NOT NULL DEFAULT 0, pid INTEGER, result TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '', cancel_requested INTEGER NOT NULL DEFAULT 0,
    client_key TEXT UNIQUE, created REAL NOT NULL, updated REAL NOT NULL);
"""


#: a job started this many times without ending (the server stopped each time) is failed, not retried
MAX_ATTEMPTS = 5


def audit(db: sqlite3.Connection, actor: str, action: str, target: str, detail: dict | None = None) -> None:
    """Append an audit row inside the caller's transaction (``server.users`` reads them)."""
    db.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?,?,?,?,?)",
        (time.time(), actor, action, target, json.dumps(detail or {})),
    )


def new_id() -> str:
    """A server-made id: uuid4 hex (matches ``core.wire.ID_PATTERN``)."""
    return uuid.uuid4().hex


class Ledger:
    """SQLite ledger shared by the server process and job subprocesses.

    Parameters
    ----------
    path : Path
        Database file (created with its tables on first use).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(SCHEMA)  # executescript commits on its own: no BEGIN around it
        add_missing_columns(self._connection())

    def _connection(self) -> sqlite3.Connection:
        # one connection per thread: sqlite3 connections must not cross threads
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # an acknowledged row survives power loss, not just a crash
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error, a failed ``COMMIT`` included."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed COMMIT (disk full, I/O error) leaves it open
                db.execute("ROLLBACK")
            raise

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """Rows of a read-only query on this thread's connection."""
        return self._connection().execute(sql, args).fetchall()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- predictions ----------------------------------------------------------------------------
    def add_prediction(self, pid: str, image: str, model: str, version: str, method: str, summary: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO predictions VALUES (?,?,?,?,?,?,?)",
                (pid, image, model, version, method, time.time(), json.dumps(summary)),
            )

    def prediction(self, pid: str) -> dict[str, Any]:
        row = self._connection().execute("SELECT * FROM predictions WHERE id=?", (pid,)).fetchone()
        if row is None:
            raise NotFoundError("prediction", f"no prediction {pid}")
        return {**dict(row), "summary": json.loads(row["summary"])}

    # -- corrections ----------------------------------------------------------------------------
    def add_correction(
        self,
        cid: str,
        client_key: str | None,
        prediction: dict[str, Any],
        review: dict,
        payload_sha: str = "",
        actor: str = "",
        reviewed_voxels: int | None = None,
    ) -> tuple[str, bool]:
        """Insert a correction row unless ``client_key`` is taken; returns ``(id, created)``, in one transaction.

        ``reviewed_voxels``: size of the correction's reviewed mask (its file is written first); ``None``: none.

        Raises
        ------
        ConflictError
            ``client_key`` already names a correction with another payload (``payload_sha``).
        """
        with self.transaction() as db:
            if client_key is not None:
                row = db.execute("SELECT id, payload_sha FROM corrections WHERE client_key=?", (client_key,)).fetchone()
                if row is not None:
                    if row["payload_sha"] and payload_sha and row["payload_sha"] != payload_sha:
                        raise ConflictError("client_key", "already used for a different correction; use a new key")
                    return str(row["id"]), False
            db.execute(
                "INSERT INTO corrections (id, client_key, prediction_id, image, model, version, review, created, "
                "payload_sha, actor, reviewed_voxels) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    cid,
                    client_key,
                    prediction["id"],
                    prediction["image"],
                    prediction["model"],
                    prediction["version"],
                    json.dumps(review),
                    time.time(),
                    payload_sha,
                    actor,
                    reviewed_voxels,
                ),
            )
            audit(db, actor, "correction", cid, {"prediction": prediction["id"], "model": prediction["model"]})
            return cid, True

    def corrections(self, model: str, ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Corrections of ``model`` (all versions), oldest first; only ``ids`` when given."""
        rows = self._connection().execute("SELECT * FROM corrections WHERE model=? ORDER BY created", (model,))
        out = [dict(r) for r in rows]
        if ids is not None:
            wanted = set(ids)
            missing = sorted(wanted - {r["id"] for r in out})
            if missing:
                raise NotFoundError("corrections", f"unknown correction id(s) for model {model}: {missing[:5]}")
            out = [r for r in out if r["id"] in wanted]
        return out

    # -- model versions and serving -------------------------------------------------------------
    def add_version(
        self,
        model: str,
        version: ModelVersion,
        serve_if_first: bool = True,
        job: tuple[str, dict] | None = None,
        actor: str = "",
    ) -> None:
        """Insert a version row (the first of a model is served); with ``job=(id, result)`` the job's
        SUCCEEDED state and result are committed in the same transaction.

        Raises
        ------
        ConflictError
            The job is no longer RUNNING or was asked to cancel (nothing is inserted).
        """
        with self.transaction() as db:
            if job is not None:
                row = db.execute("SELECT state, cancel_requested FROM jobs WHERE id=?", (job[0],)).fetchone()
                if row is None or row["state"] != "running" or row["cancel_requested"]:
                    raise ConflictError("job", f"job {job[0]} was cancelled or is no longer running")
                db.execute(
                    "UPDATE jobs SET state='succeeded', result=?, progress=1, eta_s=NULL, updated=? WHERE id=?",
                    (json.dumps(job[1]), time.time(), job[0]),
                )
            db.execute(
                "INSERT INTO versions (model, version, method, parent, created, metrics, actor) VALUES (?,?,?,?,?,?,?)",
                (
                    model,
                    version.version,
                    version.method,
                    version.parent,
                    version.created,
                    json.dumps(version.metrics),
                    actor,
                ),
            )
            audit(
                db,
                actor,
                "add_version",
                f"{model}/{version.version}",
                {"parent": version.parent, "job": job and job[0]},
            )
            served = db.execute("SELECT 1 FROM serving_history WHERE model=?", (model,)).fetchone()
            if serve_if_first and served is None:
                db.execute(
                    "INSERT INTO serving_history (model, version, at) VALUES (?,?,?)",
                    (model, version.version, time.time()),
                )

    def versions(self, model: str) -> list[ModelVersion]:
        rows = self._connection().execute("SELECT * FROM versions WHERE model=? ORDER BY rowid", (model,)).fetchall()
        return [
            ModelVersion(r["version"], r["method"], r["created"], r["parent"], json.loads(r["metrics"])) for r in rows
        ]

    def model_names(self) -> list[str]:
        return [r[0] for r in self._connection().execute("SELECT DISTINCT model FROM versions ORDER BY model")]

    def serving(self, model: str) -> str:
        row = (
            self._connection()
            .execute("SELECT version FROM serving_history WHERE model=? ORDER BY seq DESC LIMIT 1", (model,))
            .fetchone()
        )
        if row is None:
            raise NotFoundError("model", f"unknown model {model!r}")
        return str(row[0])

    def summary(self, model: str, labels: dict[str, str] | None = None) -> ModelSummary:
        versions = self.versions(model)
        if not versions:
            raise NotFoundError("model", f"unknown model {model!r}; known: {', '.join(self.model_names()) or 'none'}")
        return ModelSummary(model, self.serving(model), tuple(versions), labels or {})

    def promote(self, model: str, version: str, actor: str = "") -> None:
        if version not in {v.version for v in self.versions(model)}:
            raise NotFoundError("version", f"model {model!r} has no version {version!r}")
        with self.transaction() as db:
            db.execute(
                "INSERT INTO serving_history (model, version, at, actor) VALUES (?,?,?,?)",
                (model, version, time.time(), actor),
            )
            audit(db, actor, "promote", f"{model}/{version}")

    def rollback(self, model: str, actor: str = "") -> str:
        """Drop the latest serving entry; returns the version served again."""
        with self.transaction() as db:
            rows = db.execute(
                "SELECT seq, version FROM serving_history WHERE model=? ORDER BY seq DESC LIMIT 2", (model,)
            ).fetchall()
            if len(rows) < 2:
                raise InputError("rollback", f"model {model!r} has no earlier served version to roll back to")
            db.execute("DELETE FROM serving_history WHERE seq=?", (rows[0]["seq"],))
            audit(db, actor, "rollback", f"{model}/{rows[0]['version']}", {"serving": rows[1]["version"]})
            return str(rows[1]["version"])

    # -- jobs -----------------------------------------------------------------------------------
    def create_job(
        self, kind: str, model: str, params: dict, client_key: str | None = None, actor: str = ""
    ) -> tuple[str, bool]:
        """Insert a QUEUED job; returns ``(id, created)`` (an existing ``client_key`` returns that job)."""
        with self.transaction() as db:
            if client_key is not None:
                row = db.execute("SELECT id FROM jobs WHERE client_key=?", (client_key,)).fetchone()
                if row is not None:
                    return str(row[0]), False
            jid, now = new_id(), time.time()
            db.execute(
                "INSERT INTO jobs (id, kind, model, params, state, client_key, created, updated, actor) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (jid, kind, model, json.dumps(params), "queued", client_key, now, now, actor),
            )
            audit(db, actor, "start_job", jid, {"kind": kind, "model": model})
            return jid, True

    def job_row(self, jid: str) -> dict[str, Any]:
        row = self._connection().execute("SELECT * FROM jobs WHERE id=?", (jid,)).fetchone()
        if row is None:
            raise NotFoundError("job", f"no job {jid}")
        return {**dict(row), "params": json.loads(row["params"]), "result": json.loads(row["result"])}

    def job(self, jid: str) -> JobStatus:
        r = self.job_row(jid)
        return JobStatus(
            r["id"],
            r["kind"],
            r["state"],
            r["progress"],
            r["message"],
            r["eta_s"],
            r["attempts"],
            r["result"],
            r["error"],
        )

    def jobs(self, limit: int = 100) -> list[JobStatus]:
        ids = [r[0] for r in self._connection().execute("SELECT id FROM jobs ORDER BY created DESC LIMIT ?", (limit,))]
        return [self.job(i) for i in ids]

    def claim_next(self, max_attempts: int = MAX_ATTEMPTS) -> dict[str, Any] | None:
        """Mark the oldest QUEUED job RUNNING (attempts + 1) and return it, or ``None``.

        A job already started ``max_attempts`` times (each ended by a server stop) is FAILED instead.
        """
        with self.transaction() as db:
            row = db.execute("SELECT id, attempts FROM jobs WHERE state='queued' ORDER BY created LIMIT 1").fetchone()
            if row is None:
                return None
            if row["attempts"] >= max_attempts:
                db.execute(
                    "UPDATE jobs SET state='failed', error=?, eta_s=NULL, updated=? WHERE id=?",
                    (f"gave up after {row['attempts']} attempts (the server stopped during each)", time.time(), row[0]),
                )
                return None
            db.execute(
                "UPDATE jobs SET state='running', attempts=attempts+1, pid=NULL, updated=? WHERE id=?",
                (time.time(), row[0]),
            )
        return self.job_row(str(row[0]))

    def set_pid(self, jid: str, pid: int) -> bool:
        """Record the job process's pid (called by the job process itself); False if the job is not RUNNING."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET pid=?, updated=? WHERE id=? AND state='running' AND cancel_requested=0",
                (pid, time.time(), jid),
            )
            return cursor.rowcount == 1

    def report(self, jid: str, progress: float, message: str, eta_s: float | None) -> None:
        """Progress from the job process (only while RUNNING: a cancelled job's late report is ignored)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET progress=?, message=?, eta_s=?, updated=? WHERE id=? AND state='running'",
                (float(progress), message[:500], eta_s, time.time(), jid),
            )

    def finish(self, jid: str, state: str, result: dict | None = None, error: str = "") -> None:
        """Move a job to a final state (a job already final keeps its state)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state=?, result=?, error=?, "
                "progress=CASE WHEN ?='succeeded' THEN 1 ELSE progress END, eta_s=NULL, updated=? "
                "WHERE id=? AND state IN ('queued', 'running')",
                (state, json.dumps(result or {}), error[-4000:], state, time.time(), jid),
            )

    def request_cancel(self, jid: str) -> str:
        """Flag a job for cancellation; a QUEUED job is CANCELLED at once. Returns the state before."""
        with self.transaction() as db:
            row = db.execute("SELECT state FROM jobs WHERE id=?", (jid,)).fetchone()
            if row is None:
                raise NotFoundError("job", f"no job {jid}")
            db.execute("UPDATE jobs SET cancel_requested=1, updated=? WHERE id=?", (time.time(), jid))
            if row[0] == "queued":
                db.execute("UPDATE jobs SET state='cancelled', updated=? WHERE id=?", (time.time(), jid))
            return str(row[0])

    def running_jobs(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self._connection().execute("SELECT id FROM jobs WHERE state='running'")]
        return [self.job_row(i) for i in ids]

    def requeue(self, jid: str) -> None:
        """RUNNING -> QUEUED after a server crash (or CANCELLED if a cancel was pending)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state=CASE WHEN cancel_requested=1 THEN 'cancelled' ELSE 'queued' END, pid=NULL, "
                "updated=? WHERE id=? AND state='running'",
                (time.time(), jid),
            )
