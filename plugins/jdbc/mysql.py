"""MySQL query tasks and trigger (Kestra's plugin-jdbc-mysql), with PyMySQL (the `mysql` extra; pure Python, it
speaks to MySQL and MariaDB alike).

Values come out as Kestra's MysqlCellConverter and the JDBC driver give them: DATETIME as a local date-time,
TIMESTAMP as an instant (UTC), TIME as a time of day, TINYINT(1) and BIT(1) as booleans, YEAR as the year's first
day, DECIMAL as a decimal, JSON as its text, BLOB as bytes.

`inputFile` is written to the working directory as `inputFile`, and `{{ inputFile }}` in the SQL is its path, for
`LOAD DATA LOCAL INFILE '{{ inputFile }}'`; only that file may be loaded (the driver allows no other local file).
TLS is asked for in the URL, as with MySQL's JDBC driver: `?sslMode=REQUIRED` (or VERIFY_CA, VERIFY_IDENTITY;
`useSSL=true` is REQUIRED).
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from plugins.extras import require
from plugins.jdbc.common import Backend, Cells, JdbcQueries, JdbcQuery, Statement
from plugins.jdbc.connect import ServerBackend
from plugins.jdbc.trigger import JdbcTrigger
from runner.api import RunContext, TaskFailed

TINY, TIMESTAMP, DATETIME, TIME, YEAR, BIT = 1, 7, 12, 11, 13, 16
INPUT_FILE = "inputFile"


@dataclass
class MySqlBackend(ServerBackend):
    """One PyMySQL connection in autocommit mode (BEGIN/COMMIT where the task asks for a transaction)."""

    dialect = "mysql"
    product = "MySQL"
    scheme = "mysql"
    default_port = 3306
    input_file: str | None = None

    def open(self) -> Any:
        pymysql = require("pymysql", "mysql", self.task_type, "PyMySQL")
        self.errors = (pymysql.MySQLError,)
        try:
            return pymysql.connect(**self._arguments(), autocommit=True)
        except pymysql.MySQLError as exc:
            raise self.connect_failed(exc) from None

    def _arguments(self) -> dict[str, Any]:
        url = self.jdbc_url
        arguments: dict[str, Any] = {
            "host": url.host, "port": url.port, "user": self.user or "", "password": self.secret or "",
            "database": url.database, "charset": "utf8mb4", "connect_timeout": int(url.option("connectTimeout") or 10),
        }  # fmt: skip
        context = _tls(url.option("sslMode"), url.option("useSSL", "requireSSL"))
        if context is not None:
            arguments["ssl"] = context
        if self.input_file:
            arguments["local_infile"] = True
        return arguments

    def begin(self) -> None:
        self.conn.begin()

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        with contextlib.suppress(*self.errors):
            self.conn.rollback()

    def execute(self, statement: Statement, parameters: dict[str, Any]) -> Any:
        text, used = statement.handle
        self._check_local_file(statement.text)
        cursor = self.conn.cursor()
        if used:
            cursor.execute(text, {name: _bound(parameters[name]) for name in used})
        else:
            cursor.execute(text)
        return cursor

    def _check_local_file(self, text: str) -> None:
        """LOAD DATA LOCAL reads only the task's inputFile (Kestra's allowLoadLocalInfileInPath)."""
        lowered = " ".join(text.lower().split())
        if "load data local infile" in lowered and (self.input_file is None or self.input_file not in text):
            raise TaskFailed("LOAD DATA LOCAL INFILE may only read the task's inputFile: write '{{ inputFile }}'")

    def returns_rows(self, statement: Statement, cursor: Any) -> bool:
        return cursor.description is not None

    def interrupt(self) -> None:
        """MySQL stops a query that another connection kills (KILL QUERY <its connection id>)."""
        import pymysql

        try:
            other = pymysql.connect(**self._arguments())
        except pymysql.MySQLError:
            return
        try:
            other.cursor().execute(f"KILL QUERY {int(self.conn.thread_id())}")
        except pymysql.MySQLError:
            pass
        finally:
            other.close()

    def cells(self, cursor: Any) -> Cells:
        return [_cell(column[1], column[3]) for column in cursor.description]


def _tls(mode: str | None, use_ssl: str | None) -> ssl.SSLContext | None:
    mode = (mode or ("REQUIRED" if (use_ssl or "").lower() == "true" else "")).upper()
    if mode in ("", "DISABLED", "PREFERRED"):
        return None
    if mode not in ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"):
        raise TaskFailed(
            f"url option sslMode must be DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY, not {mode!r}"
        )
    context = ssl.create_default_context()
    context.check_hostname = mode == "VERIFY_IDENTITY"
    if mode == "REQUIRED":
        context.verify_mode = ssl.CERT_NONE
    return context


def _cell(kind: int, size: int | None) -> Any:
    if kind == TIMESTAMP:
        return lambda value: value.replace(tzinfo=UTC) if isinstance(value, datetime) else value
    if kind == TIME:
        return _time_of_day
    if (kind == TINY and size == 1) or (kind == BIT and size == 1):
        return lambda value: bool(int.from_bytes(value, "big")) if isinstance(value, bytes) else bool(value)
    if kind == YEAR:
        return lambda value: date(int(value), 1, 1) if value else value
    return _same


def _same(value: Any) -> Any:
    return value


def _time_of_day(value: Any) -> Any:
    """TIME comes from PyMySQL as a duration (MySQL's TIME spans -838 to 838 hours): a time of day when it is one."""
    if isinstance(value, timedelta) and timedelta(0) <= value < timedelta(days=1):
        return (datetime.min + value).time()
    if isinstance(value, timedelta):
        sign, total = ("-" if value < timedelta(0) else ""), abs(int(value.total_seconds()))
        return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
    return value


def _bound(value: Any) -> Any:
    """A parameter as PyMySQL sends it: maps and lists as JSON text."""
    if isinstance(value, dict | list):
        import json

        return json.dumps(value)
    return value


class _MySql(BaseModel):
    """What MySQL's types add to the query: `inputFile`, for LOAD DATA LOCAL INFILE."""

    model_config = ConfigDict(defer_build=True)

    url: str
    """jdbc:mysql://host:port/database, optionally ?sslMode=REQUIRED&connectTimeout=…"""
    inputFile: str | None = None
    """A kestra:/// URI (or text) written to the working directory as `inputFile`; `{{ inputFile }}` is its path."""

    def render_variables(self, workdir: str) -> dict[str, Any]:
        return {INPUT_FILE: f"{workdir}/{INPUT_FILE}"}

    def backend(self, ctx: RunContext) -> Backend:
        task: Any = self
        backend = MySqlBackend(ctx, None)
        backend.configure(task.type_name, task.url, task.username, task.password, task.timeZoneId)
        if self.inputFile:
            backend.input_file = str(_write_input_file(ctx, self.inputFile))
        return backend


def _write_input_file(ctx: RunContext, source: str) -> Any:
    from plugins.scripts.files import write_input_files

    write_input_files(ctx, {INPUT_FILE: source})
    return ctx.workdir / INPUT_FILE


class Query(_MySql, JdbcQuery):
    """Run a SQL query on a MySQL (or MariaDB) server."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.mysql.Query"


class Queries(_MySql, JdbcQueries):
    """Run several SQL statements on a MySQL (or MariaDB) server, in one transaction by default."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.mysql.Queries"


class Trigger(_MySql, JdbcTrigger):
    """Run a query every `interval`; an execution starts when it returns rows (`trigger.rows`, `trigger.size`)."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.mysql.Trigger"
    query_class: ClassVar[type[JdbcQuery]] = Query
