"""SQLite query tasks (the standard library's sqlite3)."""

from __future__ import annotations

import sqlite3
from typing import Any, ClassVar

from plugins.jdbc.common import Backend, JdbcQueries, JdbcQuery, Statement, database_path
from plugins.scripts.files import as_bool
from runner.api import RunContext
from runner.types import Dyn

URL_PREFIX = "jdbc:sqlite:"


def split_statements(sql: str) -> list[str]:
    """Split on the `;` that end complete statements (not those inside strings, comments or triggers)."""
    found, buffer = [], ""
    pieces = sql.split(";")
    for index, piece in enumerate(pieces):
        buffer += piece + (";" if index < len(pieces) - 1 else "")
        if index < len(pieces) - 1 and not sqlite3.complete_statement(buffer):
            continue
        if buffer.strip(" \t\r\n;"):
            found.append(buffer.strip())
        buffer = ""
    return found


class SqliteBackend(Backend):
    def connect(self) -> None:
        self.errors = (sqlite3.Error,)
        target = ":memory:" if self.path is None else str(self.path)
        self.conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)

    def statements(self, sql: str, parameters: dict[str, Any]) -> list[Statement]:
        return [Statement(text, text) for text in split_statements(sql)]

    def execute(self, statement: Statement, parameters: dict[str, Any]) -> Any:
        return self.conn.execute(statement.handle, parameters)


def _backend(task: Query | Queries, ctx: RunContext) -> SqliteBackend:
    keep = as_bool(task.outputDbFile)
    return SqliteBackend(ctx, database_path(ctx, task.url, URL_PREFIX, task.sqliteFile, keep, ".sqlite"))


class Query(JdbcQuery):
    """Run one SQL statement on a SQLite database."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.sqlite.Query"

    url: str = "jdbc:sqlite:"
    """jdbc:sqlite: followed by the database path (relative to the working directory); empty for memory."""
    sqliteFile: str | None = None
    """URI of a database file to open (copied into the working directory)."""
    outputDbFile: Dyn[bool] = False
    """Store the database file afterwards (the `databaseUri` output)."""

    def backend(self, ctx: RunContext) -> Backend:
        return _backend(self, ctx)


class Queries(JdbcQueries):
    """Run several SQL statements on a SQLite database."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.sqlite.Queries"

    url: str = "jdbc:sqlite:"
    """jdbc:sqlite: followed by the database path (relative to the working directory); empty for memory."""
    sqliteFile: str | None = None
    """URI of a database file to open (copied into the working directory)."""
    outputDbFile: Dyn[bool] = False
    """Store the database file afterwards (the `databaseUri` output)."""

    def backend(self, ctx: RunContext) -> Backend:
        return _backend(self, ctx)
