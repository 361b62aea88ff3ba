"""SQLite state: the only writer is the control plane, through one locked connection (WAL mode).

Schema as one readable block per migration; migrations are applied in order, each recorded with its
version. Every unit of work (a sync's apply, a fire, an execution step) is one `atomic()` block.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitsync.errors import StateError

MIGRATIONS: list[tuple[str, str]] = [
    (
        "initial schema",
        """
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            repo TEXT NOT NULL,             -- redacted: never holds credentials
            branch TEXT,
            path TEXT NOT NULL DEFAULT '',
            namespace_prefix TEXT NOT NULL,
            applied_commit TEXT,            -- the commit whose flows are active
            applied_at TEXT
        );
        CREATE TABLE flows (               -- the active revision of each flow
            uid TEXT PRIMARY KEY,          -- namespace.id
            source TEXT NOT NULL REFERENCES sources(name),
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            revision INTEGER NOT NULL,
            commit_sha TEXT NOT NULL,
            path TEXT NOT NULL,
            blob TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX flows_source ON flows(source);
        CREATE TABLE revisions (           -- append-only history; a removal is a revision with deleted = 1
            uid TEXT NOT NULL,
            revision INTEGER NOT NULL,
            source TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            path TEXT NOT NULL,
            blob TEXT NOT NULL,
            author TEXT,
            message TEXT,
            applied_at TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            text TEXT,                     -- the flow's YAML at that revision (executions pin it)
            PRIMARY KEY (uid, revision)
        );
        CREATE TABLE triggers (
            uid TEXT PRIMARY KEY,          -- namespace.flow_id/trigger_id
            flow_uid TEXT NOT NULL,
            trigger_id TEXT NOT NULL,
            type TEXT NOT NULL,
            spec TEXT NOT NULL,            -- JSON of the trigger's properties
            cron TEXT,
            with_seconds INTEGER NOT NULL DEFAULT 0,
            timezone TEXT,
            disabled INTEGER NOT NULL DEFAULT 0,
            paused INTEGER NOT NULL DEFAULT 0,
            registered_at TEXT NOT NULL,
            last_scheduled_at TEXT,        -- the latest scheduled time decided (fired, or skipped as too late)
            next_fire TEXT
        );
        CREATE INDEX triggers_flow ON triggers(flow_uid);
        CREATE TABLE syncs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,
            commit_sha TEXT,
            previous_commit TEXT,
            outcome TEXT NOT NULL,         -- applied | unchanged | invalid | refused | failed
            started_at TEXT NOT NULL,
            ended_at TEXT,
            summary TEXT,
            errors TEXT NOT NULL DEFAULT '[]',
            warnings TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX syncs_source ON syncs(source, id);
        CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            flow_uid TEXT NOT NULL,
            revision INTEGER NOT NULL,
            commit_sha TEXT NOT NULL,
            state TEXT NOT NULL,
            trigger_uid TEXT,
            scheduled_at TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            inputs TEXT NOT NULL DEFAULT '{}',
            outputs TEXT NOT NULL DEFAULT '{}',
            labels TEXT NOT NULL DEFAULT '{}',
            trigger_vars TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            UNIQUE (trigger_uid, scheduled_at)   -- a trigger fires at most once per scheduled time
        );
        CREATE INDEX executions_state ON executions(state);
        CREATE INDEX executions_flow ON executions(flow_uid, created_at);
        CREATE TABLE outbox (              -- commit statuses to post, written with what they report
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT,
            commit_sha TEXT NOT NULL,
            context TEXT NOT NULL,
            state TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            target_url TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT,
            given_up INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX outbox_pending ON outbox(sent_at, given_up, next_attempt_at);
        """,
    ),
    (
        "task runs, logs, kill and resume requests",
        """
        CREATE TABLE task_runs (           -- one attempt of one task (a ForEach value is its own)
            id TEXT PRIMARY KEY,
            execution_id TEXT NOT NULL,
            task_id TEXT NOT NULL,
            task_type TEXT NOT NULL,
            parent_id TEXT,
            value TEXT,
            iteration INTEGER,
            attempt INTEGER NOT NULL DEFAULT 1,
            state TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            outputs TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE INDEX task_runs_execution ON task_runs(execution_id, id);
        CREATE TABLE logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            execution_id TEXT NOT NULL,
            task_run_id TEXT,
            at TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL
        );
        CREATE INDEX logs_execution ON logs(execution_id, id);
        ALTER TABLE executions ADD COLUMN source TEXT;
        ALTER TABLE executions ADD COLUMN parent_execution TEXT;
        ALTER TABLE executions ADD COLUMN kill_requested INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE executions ADD COLUMN resume_inputs TEXT;  -- set by `gitsync resume`; the paused run reads it
        """,
    ),
    (
        "outbox sender: coalescing and the last status posted per (commit, context)",
        """
        ALTER TABLE outbox ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;  -- a newer row of the same key won
        CREATE INDEX outbox_key ON outbox(commit_sha, context, id);
        CREATE TABLE outbox_sent (         -- what the host shows for each key: never post the same thing twice
            source TEXT NOT NULL DEFAULT '',
            commit_sha TEXT NOT NULL,
            context TEXT NOT NULL,
            state TEXT NOT NULL,           -- the host's state, as posted (GitLab `running`, `failed`, ...)
            description TEXT NOT NULL,     -- as posted (truncated to the host's limit)
            outbox_id INTEGER NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (source, commit_sha, context)
        );
        """,
    ),
    (
        "flow-level retries",
        """
        ALTER TABLE executions ADD COLUMN original_id TEXT;  -- the first execution of a retried chain
        ALTER TABLE executions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
        """,
    ),
]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class Store:
    """One SQLite file. Thread-safe: every call takes the lock; `atomic()` holds it for a whole unit of work."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps it fast
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0
        self.migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- transactions -------------------------------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One transaction (nested calls join the outer one); rolled back whole on any exception."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StateError(f"cannot write state database {self.path}: {exc}") from exc
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._conn.execute("ROLLBACK")
                    raise StateError(f"cannot commit to state database {self.path}: {exc}") from exc
            finally:
                self._depth = 0

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return [dict(row) for row in self._conn.execute(sql, params)]
            except sqlite3.Error as exc:
                raise StateError(f"state query failed: {exc}") from exc

    def query_one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- migrations ---------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        with self._lock:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
            )
            done = {row[0] for row in self._conn.execute("SELECT version FROM _migrations")}
            for version, (name, sql) in enumerate(MIGRATIONS, start=1):
                if version in done:
                    continue
                with self.atomic() as conn:
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, now_iso()),
                    )

    @property
    def schema_version(self) -> int:
        row = self.query_one("SELECT max(version) AS v FROM _migrations")
        return int(row["v"] or 0) if row else 0


def _statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3's executescript would commit the open transaction)."""
    out, buffer = [], ""
    for line in script.splitlines():
        buffer += line.split("--", 1)[0] + "\n"
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    return [s for s in out if s]


IN_CHUNK = 500
"""Ids per `IN (...)` list: well under SQLite's limit on bound parameters (32,766 since 3.32, 999 before)."""


def query_in(
    conn: sqlite3.Connection | Store, sql: str, ids: Sequence[Any], params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """Run `sql` once per chunk of `ids`, its `{ids}` replaced by that chunk's placeholders; the rows of all chunks.

    `params` are bound before the chunk's ids, so `{ids}` must come after every other placeholder.
    """
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), IN_CHUNK):
        chunk = list(ids[start : start + IN_CHUNK])
        statement = sql.format(ids=",".join("?" * len(chunk)))
        if isinstance(conn, Store):
            rows.extend(conn.query(statement, (*params, *chunk)))
        else:
            rows.extend(dict(row) for row in conn.execute(statement, (*params, *chunk)))
    return rows


def execute_in(conn: sqlite3.Connection, sql: str, ids: Sequence[Any], params: Sequence[Any] = ()) -> int:
    """Like `query_in` for a write (UPDATE/DELETE … WHERE x IN ({ids})); the number of rows changed."""
    changed = 0
    for start in range(0, len(ids), IN_CHUNK):
        chunk = list(ids[start : start + IN_CHUNK])
        changed += conn.execute(sql.format(ids=",".join("?" * len(chunk))), (*params, *chunk)).rowcount
    return changed


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None
