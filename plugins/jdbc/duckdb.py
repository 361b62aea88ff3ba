"""DuckDB query tasks (the duckdb Python package).

`inputFiles` are written to the working directory before the SQL runs, and DuckDB's `file_search_path` is set to
it, so `read_csv_auto('orders.csv')` finds a file given there (`{{ workingDir }}/orders.csv` works too). Files
the SQL writes (COPY … TO) should name `{{ workingDir }}/…`: relative output paths are the gitsync process's.

`duckdb` is imported when a query runs, not when a flow using these types is validated: the library holds about
20 MB once loaded, which an idle daemon should not keep.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from plugins.jdbc.common import Backend, JdbcQueries, JdbcQuery, Statement, database_path
from plugins.scripts.files import as_bool, store_output_files, write_input_files
from plugins.values import InputFiles, StrList
from runner.api import RunContext, TaskFailed
from runner.types import Dyn

URL_PREFIX = "jdbc:duckdb:"


def named_parameters(sql: str, parameters: dict[str, Any]) -> str:
    """`:name` placeholders (JDBC style) of the given names become DuckDB's `$name` (`::` casts are left alone)."""

    def swap(match: re.Match[str]) -> str:
        return f"${match.group(1)}" if match.group(1) in parameters else match.group(0)

    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", swap, sql)


class DuckDbBackend(Backend):
    def connect(self) -> None:
        import duckdb

        self.errors = (duckdb.Error,)
        self.conn = duckdb.connect(":memory:" if self.path is None else str(self.path))
        folder = str(self.ctx.workdir).replace("'", "''")
        self.conn.execute(f"SET file_search_path = '{folder}'")

    def statements(self, sql: str, parameters: dict[str, Any]) -> list[Statement]:
        import duckdb

        if parameters:
            sql = named_parameters(sql, parameters)
        try:
            parsed = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise TaskFailed(f"the SQL does not parse: {exc}") from exc
        return [Statement(item.query.strip(), item) for item in parsed]

    def execute(self, statement: Statement, parameters: dict[str, Any]) -> Any:
        used = {
            name: parameters[name] for name in re.findall(r"\$([A-Za-z_]\w*)", statement.text) if name in parameters
        }
        return self.conn.execute(statement.handle, used or None)

    def returns_rows(self, statement: Statement, cursor: Any) -> bool:
        expected = {kind.name for kind in statement.handle.expected_result_type}
        return cursor.description is not None and "CHANGED_ROWS" not in expected


def _run(task: Query | Queries, ctx: RunContext, run: Any) -> dict[str, Any]:
    write_input_files(ctx, task.inputFiles)
    outputs = run(ctx)
    if task.outputFiles:
        outputs["outputFiles"] = store_output_files(ctx, task.outputFiles)
    return outputs


def _backend(task: Query | Queries, ctx: RunContext) -> DuckDbBackend:
    keep = as_bool(task.outputDbFile)
    return DuckDbBackend(ctx, database_path(ctx, task.url, URL_PREFIX, task.databaseUri, keep, ".duckdb"))


class _DuckDbFiles(BaseModel):
    """What DuckDB's Query and Queries share: the database file and files in and out of the working directory."""

    model_config = ConfigDict(defer_build=True)

    url: str = "jdbc:duckdb:"
    """jdbc:duckdb: followed by an optional database path (relative to the working directory)."""
    databaseUri: str | None = None
    """URI of a database file to open."""
    outputDbFile: Dyn[bool] = False
    """Store the database file afterwards."""
    inputFiles: InputFiles | None = None
    """Files created in the working directory (`{{ workingDir }}`): name -> content or URI."""
    outputFiles: StrList | None = None
    """Names of files to send to storage after the SQL."""

    def backend(self, ctx: RunContext) -> Backend:
        return _backend(self, ctx)  # type: ignore[arg-type]

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return _run(self, ctx, super().run)  # type: ignore[arg-type, misc]


class Query(_DuckDbFiles, JdbcQuery):
    """Run one SQL statement with DuckDB (in memory unless `url` names a file)."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.duckdb.Query"


class Queries(_DuckDbFiles, JdbcQueries):
    """Run several SQL statements with DuckDB."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.duckdb.Queries"
