"""What JDBC query tasks share (Kestra plugin-jdbc `AbstractJdbcQuery`)."""

from __future__ import annotations

import base64
import contextlib
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import monotonic
from typing import Any, ClassVar, Literal

from plugins.scripts.files import as_bool, as_int, as_map, inside
from runner.api import RunContext, TaskFailed, TaskKilled
from runner.plugin import Task
from runner.types import Dyn

FetchType = Literal["NONE", "FETCH_ONE", "FETCH", "STORE"]
POLL_SECONDS = 0.05


@dataclass
class Statement:
    """One statement of the task's SQL: its text (for messages) and what the driver executes."""

    text: str
    handle: Any


@dataclass
class Backend(ABC):
    """One database connection and how to talk to it; subclasses fill in the driver calls."""

    ctx: RunContext
    path: Path | None
    """The database file (None: in memory)."""
    conn: Any = None
    errors: tuple[type[BaseException], ...] = field(default_factory=tuple)

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def statements(self, sql: str, parameters: dict[str, Any]) -> list[Statement]: ...

    @abstractmethod
    def execute(self, statement: Statement, parameters: dict[str, Any]) -> Any:
        """Run one statement; return a DB-API cursor (description, fetchone, fetchmany)."""
        ...

    def returns_rows(self, statement: Statement, cursor: Any) -> bool:
        return cursor.description is not None

    def cells(self, cursor: Any) -> Cells:
        """How each column's values become Kestra's (its cell converter: intervals as ISO durations...)."""
        return None

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        with contextlib.suppress(*self.errors):
            self.conn.execute("ROLLBACK")

    def interrupt(self) -> None:
        self.conn.interrupt()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def database_path(ctx: RunContext, url: str, prefix: str, stored: str | None, keep: bool, suffix: str) -> Path | None:
    """The database file of `url` (`<prefix><path>`, relative to the working directory), None for memory.

    A stored database (`stored`, a kestra:/// URI) is copied to that path first; an in-memory database that
    must be kept (`keep`, outputDbFile) or loaded from `stored` becomes a file in the working directory.
    """
    if not url.startswith(prefix):
        raise TaskFailed(f"url must start with {prefix!r}, not {url!r}")
    location = url[len(prefix) :].split("?", 1)[0].strip()
    if location in ("", ":memory:", "memory:"):
        if not (keep or stored):
            return None
        path = ctx.workdir / f"{ctx.task_id}-{uuid.uuid4().hex[:8]}{suffix}"
    else:
        path = Path(location) if Path(location).is_absolute() else inside(ctx.workdir, location, "url path")
    path.parent.mkdir(parents=True, exist_ok=True)
    if stored:
        path.write_bytes(ctx.storage.path(stored.strip()).read_bytes())
    return path


def fetch_type(task: JdbcQuery) -> str:
    """fetchType, or the deprecated booleans when they say more (store > fetch > fetchOne)."""
    if as_bool(task.store):
        return "STORE"
    if as_bool(task.fetch):
        return "FETCH"
    if as_bool(task.fetchOne):
        return "FETCH_ONE"
    value = str(task.fetchType or "NONE").upper()
    if value not in ("NONE", "FETCH_ONE", "FETCH", "STORE"):
        raise TaskFailed(f"fetchType must be NONE, FETCH_ONE, FETCH or STORE, not {value!r}")
    return value


def jsonable(value: Any) -> Any:
    """A column value as JSON can hold it (dates as ISO-8601, decimals as numbers, bytes as base64)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(item) for item in value]
    return str(value)


Cells = list[Callable[[Any], Any]] | None
"""One function per column turning the driver's value into Kestra's (see `Backend.cells`); None: as they are."""


def _rows(
    cursor: Any, batch: int, convert: Callable[[Any], Any] = jsonable, cells: Cells = None
) -> Iterator[dict[str, Any]]:
    columns = [column[0] for column in cursor.description]
    while True:
        chunk = cursor.fetchmany(batch)
        if not chunk:
            return
        for row in chunk:
            if cells is None:
                yield {name: convert(value) for name, value in zip(columns, row, strict=False)}
            else:
                yield {
                    name: convert(None if value is None else cell(value))
                    for name, value, cell in zip(columns, row, cells, strict=False)
                }


def collect(ctx: RunContext, cursor: Any, fetch: str, batch: int, name: str, cells: Cells = None) -> dict[str, Any]:
    """The outputs of one result set: row (FETCH_ONE), rows (FETCH), uri (STORE, an Ion file), size."""
    if fetch == "FETCH_ONE":
        row = next(_rows(cursor, 1, cells=cells), None)
        return {"row": row, "size": 0 if row is None else 1}
    if fetch == "FETCH":
        rows = list(_rows(cursor, batch, cells=cells))
        return {"rows": rows, "size": len(rows)}
    if fetch == "STORE":
        return _store(ctx, cursor, batch, name, cells)
    return {}


def _store(ctx: RunContext, cursor: Any, batch: int, name: str, cells: Cells = None) -> dict[str, Any]:
    """Rows as Kestra stores them: an Ion file, one map per line, the driver's values kept (dates as timestamps,
    decimals as decimals, bytes as blobs; see plugins/ion.py)."""
    from plugins import ion  # amazon-ion is imported by the first STORE, not by validating a query

    local = ctx.workdir / f".{ctx.task_id}-{uuid.uuid4().hex[:8]}.ion"
    try:
        with local.open("w", encoding="utf-8") as handle:
            size = ion.write_rows(handle, _rows(cursor, batch, _as_stored, cells))
        return {"uri": ctx.storage.put(local, name), "size": size}
    finally:
        local.unlink(missing_ok=True)


def _as_stored(value: Any) -> Any:
    """A column value as the Ion file keeps it (Ion holds dates, decimals and bytes itself)."""
    if value is None or isinstance(value, bool | int | float | str | Decimal | bytes | date | time):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return {str(key): _as_stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_stored(item) for item in value]
    return jsonable(value)


def interrupt_on_cancel(ctx: RunContext, backend: Backend) -> Callable[[], str | None]:
    """Interrupt the query when ctx.cancelled is set or the timeout passes; the stop function returns why."""
    done = threading.Event()
    reason: list[str] = []
    timeout = ctx.timeout_seconds

    deadline = None if timeout is None else monotonic() + timeout

    def watch() -> None:
        while not done.wait(POLL_SECONDS):
            if ctx.cancelled.is_set() or (deadline is not None and monotonic() >= deadline):
                reason.append("killed" if ctx.cancelled.is_set() else f"timed out after {timeout:g} s")
                backend.interrupt()
                return

    thread = threading.Thread(target=watch, name="sql-watch", daemon=True)
    thread.start()

    def stop() -> str | None:
        done.set()
        if thread is not threading.current_thread():
            thread.join()
        return reason[0] if reason else None

    return stop


def run_sql(ctx: RunContext, task: JdbcQuery, backend: Backend, many: bool) -> dict[str, Any]:
    """Run the task's statements; Query returns the last result set's outputs, Queries a list of them."""
    fetch = fetch_type(task)
    batch = max(1, as_int(task.fetchSize, 10000))
    parameters = as_map(task.parameters, "parameters")
    backend.connect()
    stop = interrupt_on_cancel(ctx, backend)
    try:
        results = _run_statements(ctx, task, backend, many, fetch, batch, parameters)
    except TaskFailed as exc:
        why = stop()
        if why is not None:
            raise TaskKilled(f"the query was {why}") from exc
        raise
    finally:
        stop()
        backend.close()
    outputs: dict[str, Any] = {"outputs": results} if many else (results[-1] if results else {})
    if as_bool(getattr(task, "outputDbFile", False)) and backend.path is not None:
        outputs["databaseUri"] = ctx.storage.put(backend.path, backend.path.name)
    return outputs


def _run_statements(
    ctx: RunContext,
    task: JdbcQuery,
    backend: Backend,
    many: bool,
    fetch: str,
    batch: int,
    parameters: dict[str, Any],
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    statements = backend.statements(task.sql, parameters)
    if not statements:
        raise TaskFailed("sql holds no statement")
    transaction = many and as_bool(getattr(task, "transaction", False), True)
    after = _after_sql(task, backend, parameters)
    transaction = transaction or after is not None
    if transaction:
        backend.begin()
    for number, statement in enumerate(statements, 1):
        cursor = _execute(backend, statement, parameters, number, len(statements), transaction)
        if backend.returns_rows(statement, cursor) and fetch != "NONE":
            name = f"result-{number}.ion" if many else "result.ion"
            results.append(collect(ctx, cursor, fetch, batch, name, backend.cells(cursor)))
    if after is not None:
        try:
            backend.execute(after, parameters)
        except backend.errors as exc:
            backend.rollback()
            raise TaskFailed(f"afterSQL failed, so the query's changes were rolled back: {exc}") from exc
    if transaction:
        backend.commit()
    return results


def _after_sql(task: JdbcQuery, backend: Backend, parameters: dict[str, Any]) -> Statement | None:
    """afterSQL's one statement (run after the query, in its transaction), None when there is none."""
    text = getattr(task, "afterSQL", None)
    if not text or not text.strip():
        return None
    statements = backend.statements(text, parameters)
    if len(statements) > 1:
        raise TaskFailed("afterSQL holds several statements; it takes one (use a Queries task for more)")
    return statements[0] if statements else None


def _execute(
    backend: Backend, statement: Statement, parameters: dict[str, Any], number: int, count: int, transaction: bool
) -> Any:
    try:
        return backend.execute(statement, parameters)
    except backend.errors as exc:
        if transaction:
            backend.rollback()
        where = f"statement {number} of {count}" if count > 1 else "the statement"
        raise TaskFailed(f"{where} failed: {exc}\n{_excerpt(statement.text)}") from exc


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " …"


POOLING_INERT = {
    "connectionPooling": "gitsync opens one connection per task run and closes it at its end",
    "connectionPoolSize": "gitsync opens one connection per task run and closes it at its end",
}


class JdbcQuery(Task):
    """Connection and fetch options of one SQL query (or script, for `Queries`)."""

    inert: ClassVar[dict[str, str]] = {**Task.inert, **POOLING_INERT}

    url: str
    """The JDBC URL."""
    username: str | None = None
    """Database user."""
    password: str | None = None
    """Database password."""
    timeZoneId: str | None = None
    """Time zone used to read date/time columns."""
    sql: str
    """The SQL; rendered."""
    parameters: Dyn[dict[str, Any]] | None = None
    """Values bound to named `:parameter` placeholders."""
    afterSQL: str | None = None
    """One statement run after `sql`, in the same transaction (to mark the rows read as processed)."""
    fetchType: Dyn[FetchType] = "NONE"
    """Keep no rows, the first (`row`), all (`rows`) or store them in a file (`uri`)."""
    fetchSize: Dyn[int] = 10000
    """Rows fetched per round trip."""
    fetch: bool | None = None
    """Deprecated: fetchType FETCH."""
    fetchOne: bool | None = None
    """Deprecated: fetchType FETCH_ONE."""
    store: bool | None = None
    """Deprecated: fetchType STORE."""
    connectionPooling: Dyn[bool] | None = None
    """Accepted for Kestra's flows: a connection is opened per task run."""
    connectionPoolSize: Dyn[int] | None = None
    """Accepted for Kestra's flows: a connection is opened per task run."""

    @abstractmethod
    def backend(self, ctx: RunContext) -> Backend:
        """The database this task talks to (each JDBC plugin says which)."""
        ...

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return run_sql(ctx, self, self.backend(ctx), many=False)


class JdbcQueries(JdbcQuery):
    """Several `;`-separated statements, optionally in one transaction."""

    transaction: Dyn[bool] = True
    """Run all statements in one transaction."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return run_sql(ctx, self, self.backend(ctx), many=True)
