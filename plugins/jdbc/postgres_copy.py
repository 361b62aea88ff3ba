"""PostgreSQL's COPY (Kestra's CopyIn and CopyOut): a stored file into a table (`COPY … FROM STDIN`), a table or a
query's rows into a stored file (`COPY … TO STDOUT`), in TEXT, CSV or BINARY format. The COPY command is built from
the properties as Kestra's AbstractCopy builds it; table and column names are the author's SQL, written as given."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field

from plugins.jdbc.common import interrupt_on_cancel
from plugins.jdbc.postgresql import PostgresBackend, _Postgres
from plugins.scripts.files import as_bool
from plugins.values import StrList
from runner.api import RunContext, TaskFailed, TaskKilled
from runner.plugin import Task
from runner.types import Dyn

CHUNK = 1 << 16


def _quoted(value: str, what: str) -> str:
    """A COPY option's literal; a one-byte character where PostgreSQL wants one (`\\t` written as a tab)."""
    value = value.replace("\\t", "\t") if what in ("delimiter", "quote", "escape") else value
    if what in ("delimiter", "quote", "escape") and len(value.encode()) != 1:
        raise TaskFailed(f"{what} must be a single one-byte character, not {value!r}")
    return "'" + value.replace("'", "''") + "'"


class _Copy(Task):
    """Options of PostgreSQL's COPY command (see https://www.postgresql.org/docs/current/sql-copy.html)."""

    username: str | None = None
    """Database user."""
    password: str | None = None
    """Database password."""
    timeZoneId: str | None = None
    """Not used by COPY (accepted, as Kestra's CopyIn and CopyOut accept it)."""
    table: str | None = None
    """The table (optionally schema-qualified)."""
    columns: StrList | None = None
    """The columns copied (all of the table's by default)."""
    format: Dyn[Literal["TEXT", "CSV", "BINARY"]] = "TEXT"
    """TEXT (tab-separated), CSV or BINARY (PostgreSQL's binary COPY format)."""
    oids: Dyn[bool] | None = None
    """Copy each row's OID (tables WITH OIDS only; gone since PostgreSQL 12)."""
    freeze: Dyn[bool] | None = None
    """COPY FREEZE: rows frozen as after VACUUM FREEZE."""
    delimiter: str | None = None
    """Column separator: one one-byte character (tab for TEXT, comma for CSV)."""
    nullString: str | None = None
    """The text of a null value (`\\N` for TEXT, an empty unquoted value for CSV)."""
    header: Dyn[bool] | None = None
    """CSV only: the first line holds the column names."""
    quote: str | None = None
    """CSV only: the quoting character (double quote)."""
    escape: str | None = None
    """CSV only: the character before a quote inside a quoted value (the quote itself)."""
    forceQuote: StrList | None = None
    """COPY TO, CSV only: columns always quoted (`*`: all)."""
    forceNotNull: StrList | None = None
    """COPY FROM, CSV only: columns whose values are never read as null."""
    forceNull: StrList | None = None
    """COPY FROM, CSV only: columns whose quoted null string is read as null too."""
    encoding: str | None = None
    """The file's encoding (the client's by default)."""
    socketTimeout: Dyn[int] | None = None
    """Seconds the COPY may take before the server stops it (its statement_timeout; 0: no limit)."""

    def command(self, query: str | None, direction: str) -> str:
        """The COPY command (Kestra's AbstractCopy.query)."""
        parts = ["COPY"]
        if query is None:
            if not self.table:
                raise TaskFailed("table is required: name the table to copy")
            parts.append(self.table)
            if self.columns:
                parts.append("(" + ", ".join(self.columns) + ")")
        else:
            parts.append(f"({query})")
        parts.append(direction)
        options = self._options()
        if options:
            parts.append("WITH (" + ", ".join(options) + ")")
        return " ".join(parts)

    def _options(self) -> list[str]:
        options = []
        fmt = str(self.format).upper()
        if fmt not in ("TEXT", "CSV", "BINARY"):
            raise TaskFailed(f"format must be TEXT, CSV or BINARY, not {fmt!r}")
        if fmt != "TEXT":
            options.append(f"FORMAT {fmt}")
        if self.oids is not None and as_bool(self.oids):
            options.append("OIDS")
        if self.freeze is not None and as_bool(self.freeze):
            options.append("FREEZE")
        for name, keyword in (("delimiter", "DELIMITER"), ("nullString", "NULL")):
            value = getattr(self, name)
            if value is not None:
                options.append(f"{keyword} {_quoted(value, name if name == 'delimiter' else 'null')}")
        if self.header is not None:
            options.append("HEADER " + ("TRUE" if as_bool(self.header) else "FALSE"))
        for name in ("quote", "escape"):
            value = getattr(self, name)
            if value is not None:
                options.append(f"{name.upper()} {_quoted(value, name)}")
        if self.forceQuote:
            star = self.forceQuote == ["*"]
            options.append("FORCE_QUOTE " + ("*" if star else "(" + ", ".join(self.forceQuote) + ")"))
        if self.forceNotNull:
            options.append("FORCE_NOT_NULL (" + ", ".join(self.forceNotNull) + ")")
        if self.forceNull:
            options.append("FORCE_NULL (" + ", ".join(self.forceNull) + ")")
        if self.encoding is not None:
            options.append(f"ENCODING {_quoted(self.encoding, 'encoding')}")
        return options

    def connect(self, ctx: RunContext) -> PostgresBackend:
        backend: Any = self.backend(ctx)  # type: ignore[attr-defined]
        if self.socketTimeout and int(self.socketTimeout) > 0:
            backend.session.append(f"statement_timeout={int(self.socketTimeout) * 1000}")
        backend.connect()
        return backend

    def run_copy(self, ctx: RunContext, sql: str, move: Callable[[Any], None]) -> int:
        """Run the COPY `sql`, `move` passing its data; the rows copied. Stopped when the run is killed or times
        out, as a query is."""
        backend = self.connect(ctx)
        stop = interrupt_on_cancel(ctx, backend)
        try:
            cursor = backend.conn.cursor()
            with cursor.copy(sql) as copy:
                move(copy)
            return int(cursor.rowcount)
        except backend.errors as exc:
            why = stop()
            if why is not None:
                raise TaskKilled(f"the COPY was {why}") from exc
            raise TaskFailed(backend.masked(f"the COPY failed: {' '.join(str(exc).split())}\n{sql}")) from exc
        finally:
            stop()
            backend.close()


class CopyIn(_Postgres, _Copy):
    """Load a stored file (CSV, text or binary COPY data) into a PostgreSQL table."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.postgresql.CopyIn"

    from_: str = Field(alias="from")
    """URI of the file to load (kestra:///…)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = ctx.storage.path(self.from_.strip())
        sql = self.command(None, "FROM STDIN")
        with source.open("rb") as handle:

            def send(copy: Any) -> None:
                while chunk := handle.read(CHUNK):
                    copy.write(chunk)

            rows = self.run_copy(ctx, sql, send)
        ctx.logger.info(f"copied {rows} rows into {self.table}")
        return {"rowCount": rows}


class CopyOut(_Postgres, _Copy):
    """Write a PostgreSQL table, or the rows of a query, to a stored file (CSV, text or binary COPY data)."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.postgresql.CopyOut"

    sql: str | None = None
    """A SELECT, VALUES, or INSERT/UPDATE/DELETE … RETURNING whose rows are copied (instead of `table`)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        sql = self.command(self.sql.strip().rstrip(";") if self.sql else None, "TO STDOUT")
        local = ctx.workdir / f".copy-out-{uuid.uuid4().hex[:8]}"
        try:
            with local.open("wb") as handle:
                rows = self.run_copy(ctx, sql, lambda copy: handle.writelines(copy))
        except BaseException:
            local.unlink(missing_ok=True)
            raise
        try:
            uri = ctx.storage.put(local, "copy-out")
        finally:
            local.unlink(missing_ok=True)
        return {"uri": uri, "rowCount": rows}
