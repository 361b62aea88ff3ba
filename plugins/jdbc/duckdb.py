"""DuckDB query tasks."""

from __future__ import annotations

from typing import ClassVar

from plugins.jdbc.common import JdbcQueries, JdbcQuery
from plugins.values import InputFiles, StrList
from runner.types import Dyn


class Query(JdbcQuery):
    """Run one SQL statement with DuckDB (in memory unless `url` names a file)."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.duckdb.Query"

    url: str = "jdbc:duckdb:"
    """jdbc:duckdb: followed by an optional database path."""
    databaseUri: str | None = None
    """URI of a database file to open."""
    outputDbFile: Dyn[bool] = False
    """Store the database file afterwards."""
    inputFiles: InputFiles | None = None
    """Files created in the working directory (`{{ workingDir }}`): name -> content or URI."""
    outputFiles: StrList | None = None
    """Names of files to send to storage after the query."""


class Queries(JdbcQueries):
    """Run several SQL statements with DuckDB."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.duckdb.Queries"

    url: str = "jdbc:duckdb:"
    """jdbc:duckdb: followed by an optional database path."""
    databaseUri: str | None = None
    """URI of a database file to open."""
    outputDbFile: Dyn[bool] = False
    """Store the database file afterwards."""
    inputFiles: InputFiles | None = None
    """Files created in the working directory (`{{ workingDir }}`): name -> content or URI."""
    outputFiles: StrList | None = None
    """Names of files to send to storage after the queries."""
