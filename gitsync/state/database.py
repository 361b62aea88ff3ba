"""SQLite state: the only writer is the control plane, through one locked connection (WAL mode).

The schema is in `gitsync.state.schema` (one migration per released change, applied in order, each recorded
with its version). Every unit of work (a sync's apply, a fire, an execution step) is one `atomic()` block.
The connection is also wrapped in a `sqlite_utils.Database` (`Store.db`, or `database(conn)` inside
`atomic()`) for table-level reads and writes, made when first used: a process that reads no table through it (an
idle daemon) never imports sqlite-utils, nor the plugin manager and date parser it brings.

sqlite-utils and transactions: its write methods run in `Database.atomic()`, which opens a SAVEPOINT when a
transaction is already open, so inside `Store.atomic()` they join the unit of work instead of committing it
(checked in sqlite-utils 4.2.1, hence the floor in pyproject.toml: 3.x wrapped writes in `with conn:`, which
commits). Outside `Store.atomic()` they would open a plain deferred `BEGIN`: write through `Store.atomic()` only.

A write the file refuses (read-only, immutable, disk full, I/O error) raises `StateError` out of `atomic()` and
is remembered (`write_failure()`) until a write commits again: the daemon's health reads it, and `probe_write()`
tells, without waiting for real work, whether writes work again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitsync.errors import StateError

if TYPE_CHECKING:
    from sqlite_utils import Database
from gitsync.state.schema import MIGRATIONS, MigrationStep

_UNWRITABLE = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
    }
)
"""Primary result codes meaning the file cannot be written (a constraint or a bug in SQL is not one of them)."""


def _unwritable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in _UNWRITABLE


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
        self._db: Database | None = None
        self._lock = threading.RLock()
        self._depth = 0
        self._write_failure: tuple[str, str] | None = None
        """(message, since) of the last refused write, until a write commits again."""
        self._probed_at = 0.0
        self._closed = False
        self.migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._closed = True

    @property
    def db(self) -> Database:
        """sqlite-utils over the same connection (use it under the lock, as `rows_where` does); made on first use."""
        if self._db is None:
            self._db = database(self._conn)
        return self._db

    @property
    def closed(self) -> bool:
        """Closed by `close()`: every later call fails, and a poller should stop rather than retry."""
        return self._closed

    # -- transactions -------------------------------------------------------------------------------------------

    @contextmanager
    def atomic(self, *, checkpoint: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction (nested calls join the outer one); rolled back whole on any exception.

        `checkpoint=False`, for a write that must be seen at once: its commit does not copy the WAL into the file
        even when the WAL has grown past `wal_autocheckpoint` pages, the next commit does (SQLite checkpoints in the
        commit that crosses the threshold: for the release of 10,000 fires, a fifth of its time)."""
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
                self._refused(exc)
                raise StateError(f"cannot write state database {self.path}: {exc}") from exc
            self._depth = 1
            # while a failure is remembered, only a commit that changed rows shows that writes work again
            changes = self._conn.total_changes if self._write_failure is not None else 0
            try:
                yield self._conn
            except sqlite3.Error as exc:
                self._rollback()
                if not _unwritable(exc):
                    raise
                self._refused(exc)
                raise StateError(f"cannot write state database {self.path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    self._commit(checkpoint)
                except sqlite3.Error as exc:
                    self._rollback()
                    self._refused(exc)
                    raise StateError(f"cannot commit to state database {self.path}: {exc}") from exc
                if self._write_failure is not None and self._conn.total_changes != changes:
                    self._writes_work()
            finally:
                self._depth = 0

    def _commit(self, checkpoint: bool) -> None:
        if checkpoint:
            self._conn.execute("COMMIT")
            return
        (pages,) = self._conn.execute("PRAGMA wal_autocheckpoint").fetchone()
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            self._conn.execute("COMMIT")
        finally:
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")

    def _rollback(self) -> None:
        """Roll back what is open (a failed COMMIT or I/O error may already have ended the transaction)."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the error being raised says more than this one
                self._conn.execute("ROLLBACK")

    def _writes_work(self) -> None:
        self._write_failure = None
        self._probed_at = 0.0

    def _refused(self, exc: sqlite3.Error) -> None:
        if _unwritable(exc) and self._write_failure is None:
            self._write_failure = (str(exc), now_iso())

    # -- write health -------------------------------------------------------------------------------------------

    def write_failure(self) -> dict[str, str] | None:
        """The last refused write ({"error", "since"}) while writes fail; None once a write has committed since."""
        failure = self._write_failure
        return None if failure is None else {"error": failure[0], "since": failure[1]}

    def probe_write(self, every: float = 1.0) -> bool:
        """While a write failure is remembered, try a harmless write (at most once per `every` seconds, never
        waiting for the lock): True when writes work (the failure is then cleared)."""
        if self._write_failure is None:
            return True
        now = time.monotonic()
        if now - self._probed_at < every or not self._lock.acquire(timeout=0.2):
            return False
        try:
            self._probed_at = now
            with self.atomic() as conn:  # the header's user_version, set to what it is: page 1 goes to the WAL
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                conn.execute(f"PRAGMA user_version = {int(version)}")
        except StateError:
            return False
        else:
            self._writes_work()
        finally:
            self._lock.release()
        return True

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return [dict(row) for row in self._conn.execute(sql, params)]
            except sqlite3.Error as exc:
                raise StateError(f"state query failed: {exc}") from exc

    def query_one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def rows_where(
        self, table: str, where: str | None = None, params: Sequence[Any] = (), **options: Any
    ) -> list[dict[str, Any]]:
        """sqlite-utils' `table.rows_where` (`select`, `order_by`, `limit`, ...), read whole under the lock."""
        with self._lock:
            try:
                return list(self.db.table(table).rows_where(where, list(params), **options))
            except sqlite3.Error as exc:
                raise StateError(f"state query failed: {exc}") from exc

    # -- migrations ---------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply the migrations not yet recorded in `_migrations`, each in its own transaction with its record."""
        with self._lock:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
            )
            done = {row[0] for row in self._conn.execute("SELECT version FROM _migrations")}
            for version, (name, step) in enumerate(MIGRATIONS, start=1):
                if version in done:
                    continue
                with self.atomic() as conn:
                    _run_step(conn, step)
                    conn.execute(
                        "INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, now_iso()),
                    )

    @property
    def schema_version(self) -> int:
        row = self.query_one("SELECT max(version) AS v FROM _migrations")
        return int(row["v"] or 0) if row else 0


def database(conn: sqlite3.Connection) -> Database:
    """The sqlite-utils view of a connection (cheap: no query is run; no plugin hooks, no PRAGMA changed)."""
    from sqlite_utils import Database  # imported when a store first needs it, not by every command that starts

    return Database(conn, recursive_triggers=False, execute_plugins=False)


def _run_step(conn: sqlite3.Connection, step: MigrationStep) -> None:
    if callable(step):
        step(database(conn))
        return
    for statement in _statements(step):
        conn.execute(statement)


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
