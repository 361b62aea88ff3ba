"""SQLite query tasks."""

from __future__ import annotations

from typing import ClassVar

from plugins.jdbc.common import JdbcQueries, JdbcQuery
from runner.types import Dyn


class Query(JdbcQuery):
    """Run one SQL statement on a SQLite database."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.sqlite.Query"

    url: str = "jdbc:sqlite:"
    """jdbc:sqlite: followed by the database path."""
    sqliteFile: str | None = None
    """URI of a database file to open (copied into the working directory)."""
    outputDbFile: Dyn[bool] = False
    """Store the database file afterwards (the `databaseUri` output)."""


class Queries(JdbcQueries):
    """Run several SQL statements on a SQLite database."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.sqlite.Queries"

    url: str = "jdbc:sqlite:"
    """jdbc:sqlite: followed by the database path."""
    sqliteFile: str | None = None
    """URI of a database file to open (copied into the working directory)."""
    outputDbFile: Dyn[bool] = False
    """Store the database file afterwards (the `databaseUri` output)."""
