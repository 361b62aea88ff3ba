"""What JDBC query tasks share (Kestra plugin-jdbc `AbstractJdbcQuery`)."""

from __future__ import annotations

from typing import Any, Literal

from runner.plugin import Task
from runner.types import Dyn

FetchType = Literal["NONE", "FETCH_ONE", "FETCH", "STORE"]


class JdbcQuery(Task):
    """Connection and fetch options of one SQL query (or script, for `Queries`)."""

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


class JdbcQueries(JdbcQuery):
    """Several `;`-separated statements, optionally in one transaction."""

    transaction: Dyn[bool] = True
    """Run all statements in one transaction."""
