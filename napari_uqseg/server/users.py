"""People of a team server: per-user bearer tokens (stored hashed) with a role, and the audit log they leave.

Roles: ``reader`` may predict, correct and fine-tune (or evaluate); ``maintainer`` may also promote,
roll back, train and read the audit log (importing models is an admin command on the server machine).
The server's own token (``data_dir/token`` or ``$UQSEG_TOKEN``) belongs to the maintainer ``owner``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from napari_uqseg.core.errors import InputError, NotFoundError
from napari_uqseg.core.options import look_up_option
from napari_uqseg.core.wire import NAME_PATTERN, check_id
from napari_uqseg.server.ledger import Ledger, audit

READER, MAINTAINER = "reader", "maintainer"
ROLES = (READER, MAINTAINER)
OWNER = "owner"
CACHE_S = 2.0  # a revoked token stops working within this many seconds on a running server


@dataclass(frozen=True)
class User:
    """An authenticated caller: ``name`` (recorded as the actor of what they do) and ``role``."""

    name: str
    role: str

    @property
    def is_maintainer(self) -> bool:
        return self.role == MAINTAINER


#: the caller of a server started with ``--no-auth`` (loopback only): the machine's user, all rights
LOCAL_USER = User("local", MAINTAINER)


def token_sha(token: str) -> str:
    """sha256 hex of a token (tokens are 256-bit random: a plain hash is enough, and a lookup key)."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


class Users:
    """User accounts in the ledger's ``users`` table.

    Parameters
    ----------
    ledger : Ledger
        The server's ledger (tables made by ``server.ledger_schema``).
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._cache: dict[str, tuple[float, User | None]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, role: str = READER, actor: str = "admin") -> str:
        """Create user ``name`` with a new token; returns the token (shown once, only its hash is kept).

        Raises
        ------
        InputError
            Malformed name, unknown role, or a name already in use (revoked names stay taken).
        """
        check_id(name, "user name", NAME_PATTERN)
        look_up_option("role", role, ROLES, "role")
        token = secrets.token_urlsafe(32)
        with self.ledger.transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone() is not None:
                raise InputError("user name", f"user {name!r} exists (revoked names are not reused)")
            db.execute(
                "INSERT INTO users (name, role, token_sha, created) VALUES (?,?,?,?)",
                (name, role, token_sha(token), time.time()),
            )
            audit(db, actor, "add_user", name, {"role": role})
        return token

    def ensure_owner(self, token: str) -> None:
        """Make ``token`` the token of the maintainer ``owner`` (the single server token of earlier versions)."""
        sha = token_sha(token)
        with self.ledger.transaction() as db:
            row = db.execute("SELECT token_sha FROM users WHERE name=?", (OWNER,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO users (name, role, token_sha, created) VALUES (?,?,?,?)",
                    (OWNER, MAINTAINER, sha, time.time()),
                )
            elif row["token_sha"] != sha:
                db.execute("UPDATE users SET token_sha=?, role=?, revoked=NULL WHERE name=?", (sha, MAINTAINER, OWNER))

    def revoke(self, name: str, actor: str = "admin") -> None:
        """Revoke ``name``'s token (the name and its audit history stay)."""
        with self.ledger.transaction() as db:
            cursor = db.execute("UPDATE users SET revoked=? WHERE name=? AND revoked IS NULL", (time.time(), name))
            if cursor.rowcount != 1:
                raise NotFoundError("user name", f"no active user {name[:64]!r}")
            audit(db, actor, "revoke_user", name)

    def list(self) -> list[dict[str, Any]]:
        """Every user: name, role, created, revoked (never a token or its hash)."""
        rows = self.ledger.query("SELECT name, role, created, revoked FROM users ORDER BY created")
        return [dict(r) for r in rows]

    def authenticate(self, token: str) -> User | None:
        """The active user holding ``token``, or ``None``."""
        sha = token_sha(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(sha)
            if hit is not None and now - hit[0] < CACHE_S:
                return hit[1]
        rows = self.ledger.query(
            "SELECT name, role, token_sha FROM users WHERE token_sha=? AND revoked IS NULL", (sha,)
        )
        row = rows[0] if rows else None
        user = User(row["name"], row["role"]) if row and secrets.compare_digest(row["token_sha"], sha) else None
        with self._lock:
            if len(self._cache) > 1024:
                self._cache.clear()
            self._cache[sha] = (now, user)
        return user


def audit_log(ledger: Ledger, limit: int = 1000, action: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` audit rows (optionally of one ``action``), oldest first."""
    query = "SELECT seq, at, actor, action, target, detail FROM audit"
    args: tuple[Any, ...] = ()
    if action is not None:
        query, args = query + " WHERE action=?", (action,)
    rows = ledger.query(query + " ORDER BY seq DESC LIMIT ?", (*args, int(limit)))
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in reversed(rows)]
