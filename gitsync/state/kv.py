"""The key-value store of the local executor: `kv(namespace, key, value JSON, expires_at)` in SQLite.

A `SqliteKeyValue` implements `runner.api.KeyValue`. It lives in its own SQLite file (or on a connection the
engine passes in), never in the state database's transactions. Values are stored as JSON; `expires_at` is
a Unix time (NULL: never). An expired key reads as absent and is removed lazily. The clock is injectable so
tests can move time instead of sleeping. One connection is shared under a lock, so the store may be used
from several threads; several processes may open the same file (SQLite locks it, with a busy timeout).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner.api import MISSING, TaskFailed

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL CHECK (json_valid(value)),  -- JSON text (a JSON column type would get NUMERIC affinity)
    expires_at REAL,
    PRIMARY KEY (namespace, key)
)
"""


class KeyExists(TaskFailed):
    """`set(..., overwrite=False)` found a live value under the key."""


class SqliteKeyValue:
    """Namespaced keys with JSON values and optional time-to-live, over SQLite."""

    def __init__(self, db: str | Path | sqlite3.Connection, clock: Callable[[], float] = time.time) -> None:
        if isinstance(db, sqlite3.Connection):
            self._conn = db
        else:
            self._conn = sqlite3.connect(str(db), timeout=30, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._clock = clock
        self._lock = threading.RLock()
        with self._transaction() as conn:
            conn.execute(SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn.in_transaction:  # a connection passed in may already be inside one
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _expire(self, conn: sqlite3.Connection, namespace: str) -> None:
        now = self._clock()
        conn.execute(
            "DELETE FROM kv WHERE namespace = ? AND expires_at IS NOT NULL AND expires_at <= ?", (namespace, now)
        )

    def get(self, namespace: str, key: str) -> Any:
        """The value, or `MISSING` when the key is absent or expired."""
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, key, self._clock()),
            ).fetchone()
        return MISSING if row is None else json.loads(row[0])

    def set(
        self, namespace: str, key: str, value: Any, ttl_seconds: float | None = None, overwrite: bool = True
    ) -> None:
        """Store `value` (JSON-serialisable; dates become strings); raise `KeyExists` when `overwrite` is false."""
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError(f"ttl must be positive, got {ttl_seconds} seconds")
        text = json.dumps(value, default=str)
        expires_at = None if ttl_seconds is None else self._clock() + ttl_seconds
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        with self._transaction() as conn:
            self._expire(conn, namespace)
            cursor = conn.execute(
                f"{verb} INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)",
                (namespace, key, text, expires_at),
            )
            if cursor.rowcount == 0:
                raise KeyExists(f"key {key!r} already exists in namespace {namespace!r} and overwrite is false")

    def delete(self, namespace: str, key: str) -> bool:
        """Remove the key; True when a live value was removed."""
        with self._transaction() as conn:
            self._expire(conn, namespace)
            return conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).rowcount > 0

    def keys(self, namespace: str, prefix: str | None = None) -> list[str]:
        """Live keys of the namespace, sorted; only those starting with `prefix` when given."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key FROM kv WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key",
                (namespace, self._clock()),
            ).fetchall()
        return [key for (key,) in rows if prefix is None or key.startswith(prefix)]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
