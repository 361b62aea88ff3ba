"""PostgreSQL query tasks and trigger (Kestra's plugin-jdbc-postgres), with psycopg 3 (the `postgres` extra).

Values come out as Kestra's PostgresCellConverter gives them: `timestamptz` in `timeZoneId` (the server's zone by
default), `timetz` as the local time there, `interval` as an ISO-8601 duration (`P0Y1M2DT3H4M5S`), json and jsonb
parsed, arrays as lists, uuid as text, bytea as bytes (base64 in `rows`, a blob in a STORE file), numeric as a
decimal. A type Kestra has no converter for comes as the server writes it (text), where Kestra fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from plugins.extras import require
from plugins.jdbc.common import Backend, Cells, JdbcQueries, JdbcQuery, Statement
from plugins.jdbc.connect import ServerBackend, ssl_files
from plugins.jdbc.trigger import JdbcTrigger
from runner.api import RunContext, TaskFailed
from runner.types import Dyn

SslMode = Literal["DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL"]
TIMESTAMPTZ, TIMETZ = 1184, 1266

_INTERVAL = re.compile(
    r"^\s*(?:(?P<y>[+-]?\d+) years? ?)?(?:(?P<mo>[+-]?\d+) mons? ?)?(?:(?P<d>[+-]?\d+) days? ?)?"
    r"(?:(?P<sign>[+-])?(?P<h>\d+):(?P<mi>\d+):(?P<s>\d+)(?:\.\d+)?)?\s*$"
)


def iso_interval(text: str) -> str:
    """A PostgreSQL interval as the server writes it (`1 year 2 mons 3 days 04:05:06`) in Kestra's ISO form
    (`P1Y2M3DT4H5M6S`, every field written, seconds whole)."""
    match = _INTERVAL.match(text)
    if match is None:
        return text
    number = {key: int(value or 0) for key, value in match.groupdict().items() if key != "sign"}
    sign = -1 if match.group("sign") == "-" else 1
    h, mi, s = (sign * number[key] for key in ("h", "mi", "s"))
    return f"P{number['y']}Y{number['mo']}M{number['d']}DT{h}H{mi}M{s}S"


@dataclass
class PostgresBackend(ServerBackend):
    """One psycopg connection in autocommit mode (BEGIN/COMMIT where the task asks for a transaction)."""

    dialect = "postgres"
    product = "PostgreSQL"
    default_port = 5432
    scheme = "postgresql"
    session: list[str] = field(default_factory=list)
    """Settings of the session (`name=value`), given when connecting."""

    def open(self) -> Any:
        psycopg = require("psycopg", "postgres", self.task_type)
        self.errors = (psycopg.Error,)
        url = self.jdbc_url
        options = dict(self.ssl)
        schema = url.option("currentSchema")
        session = [*self.session, *([f"search_path={schema}"] if schema else [])]
        if session:
            options["options"] = " ".join(f"-c {setting}" for setting in session)
        name = url.option("ApplicationName")
        if name:
            options["application_name"] = name
        try:
            conn = psycopg.connect(
                host=url.host, port=url.port, dbname=url.database, user=self.user, password=self.secret,
                connect_timeout=int(url.option("connectTimeout") or 10), autocommit=True, **options,
            )  # fmt: skip
        except psycopg.Error as exc:
            raise self.connect_failed(exc) from None
        self._register_loaders(conn, psycopg)
        return conn

    @staticmethod
    def _register_loaders(conn: Any, psycopg: Any) -> None:
        class IntervalLoader(psycopg.adapt.Loader):
            def load(self, data: Any) -> str:
                return iso_interval(bytes(data).decode())

        conn.adapters.register_loader("interval", IntervalLoader)

    def execute(self, statement: Statement, parameters: dict[str, Any]) -> Any:
        text, used = statement.handle
        cursor = self.conn.cursor()
        if used:
            from psycopg.types.json import Jsonb

            values = {name: _bound(parameters[name], Jsonb) for name in used}
            return cursor.execute(text, values)
        return cursor.execute(text)

    def interrupt(self) -> None:
        cancel = getattr(self.conn, "cancel_safe", None) or self.conn.cancel
        cancel()

    def cells(self, cursor: Any) -> Cells:
        zone = ZoneInfo(self.zone) if self.zone else None
        kinds = [column.type_code for column in cursor.description]
        if TIMESTAMPTZ not in kinds and TIMETZ not in kinds:
            return None
        return [_timestamptz(zone) if k == TIMESTAMPTZ else _timetz(zone) if k == TIMETZ else _same for k in kinds]


def _same(value: Any) -> Any:
    return value


def _timestamptz(zone: ZoneInfo | None) -> Any:
    def convert(value: datetime) -> datetime:
        return value.astimezone(zone) if zone else value

    return convert


def _timetz(zone: ZoneInfo | None) -> Any:
    def convert(value: time) -> time:
        moment = datetime.combine(date(1970, 1, 1), value)
        return (moment.astimezone(zone) if zone else moment.astimezone(UTC)).time().replace(tzinfo=None)

    return convert


def _bound(value: Any, jsonb: Any) -> Any:
    """A parameter as psycopg binds it: maps (and lists of maps) as jsonb."""
    if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(item, dict) for item in value)):
        return jsonb(value)
    return value


class _Postgres(BaseModel):
    """Connection properties of every PostgreSQL type (Kestra's PostgresConnectionInterface)."""

    model_config = ConfigDict(defer_build=True)

    url: str
    """jdbc:postgresql://host:port/database, optionally ?sslmode=…&currentSchema=…&ApplicationName=…"""
    ssl: Dyn[bool] = False
    """Connect with TLS (sslMode VERIFY_FULL unless sslMode says otherwise, as the JDBC driver does)."""
    sslMode: Dyn[SslMode] | None = None
    """DISABLE, ALLOW, PREFER, REQUIRE, VERIFY_CA or VERIFY_FULL."""
    sslRootCert: str | None = None
    """PEM certificate of the authority that signed the server's certificate."""
    sslCert: str | None = None
    """PEM client certificate."""
    sslKey: str | None = None
    """PEM client key."""
    sslKeyPassword: str | None = None
    """Password of an encrypted sslKey."""

    def backend(self, ctx: RunContext) -> Backend:
        task: Any = self
        backend = PostgresBackend(ctx, None)
        backend.configure(task.type_name, task.url, task.username, task.password, task.timeZoneId)
        backend.ssl = ssl_files(ctx, _libpq_ssl(task), task.sslRootCert, task.sslCert, task.sslKey)
        if task.sslKeyPassword:
            backend.ssl["sslpassword"] = task.sslKeyPassword
        return backend


def _libpq_ssl(task: Any) -> dict[str, Any]:
    mode = task.sslMode
    url_mode = None
    if mode is None and str(task.ssl).lower() == "true":
        mode = "VERIFY_FULL"
    if mode is not None:
        mode = str(mode).upper()
        if mode not in ("DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL"):
            raise TaskFailed(f"sslMode must be DISABLE, ALLOW, PREFER, REQUIRE, VERIFY_CA or VERIFY_FULL, not {mode!r}")
        url_mode = mode.lower().replace("_", "-")
    return {"sslmode": url_mode} if url_mode else {}


class Query(_Postgres, JdbcQuery):
    """Run a SQL query on a PostgreSQL server."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.postgresql.Query"


class Queries(_Postgres, JdbcQueries):
    """Run several SQL statements on a PostgreSQL server, in one transaction by default."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.postgresql.Queries"


class Trigger(_Postgres, JdbcTrigger):
    """Run a query every `interval`; an execution starts when it returns rows (`trigger.rows`, `trigger.size`)."""

    type_name: ClassVar[str] = "io.kestra.plugin.jdbc.postgresql.Trigger"
    query_class: ClassVar[type[JdbcQuery]] = Query
