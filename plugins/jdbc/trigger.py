"""Kestra's JDBC Trigger (`AbstractJdbcTrigger`): every `interval`, run a query; when it returns rows, an
execution starts with them as `trigger.rows` (`trigger.row` for FETCH_ONE, `trigger.uri` for STORE) and
`trigger.size`. `afterSQL` runs in the query's transaction, to mark the rows read as processed, so the next poll
does not see them again. The daemon polls it (`gitsync/schedule/polling`) as a `ClaimingTrigger`: every poll that
returns rows fires once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from pydantic import model_validator

from plugins.jdbc.common import POOLING_INERT, FetchType, JdbcQuery
from runner.api import RunContext
from runner.plugin import Trigger
from runner.polling import ClaimingTrigger
from runner.types import Duration, Dyn

_NEVER_FIRES = "fetchType NONE keeps no rows, so the trigger would never fire: use FETCH, FETCH_ONE or STORE"


class JdbcTrigger(ClaimingTrigger):
    """The query a trigger polls; each database's trigger names the query class that runs it (`query_class`)."""

    query_class: ClassVar[type[JdbcQuery]]
    inert: ClassVar[dict[str, str]] = {**Trigger.inert, **POOLING_INERT}

    interval: Duration = timedelta(seconds=60)
    """How long between two polls."""
    url: str
    """The JDBC URL."""
    username: str | None = None
    """Database user."""
    password: str | None = None
    """Database password."""
    timeZoneId: str | None = None
    """Time zone used to read date/time columns."""
    sql: str
    """The query; the trigger fires when it returns at least one row."""
    afterSQL: str | None = None
    """One statement run after `sql`, in the same transaction (to mark the rows read as processed)."""
    parameters: Dyn[dict[str, Any]] | None = None
    """Values bound to named `:parameter` placeholders."""
    fetchType: Dyn[FetchType] = "FETCH"
    """FETCH (`trigger.rows`), FETCH_ONE (`trigger.row`) or STORE (`trigger.uri`, an Ion file)."""
    fetchSize: Dyn[int] = 10000
    """Rows fetched per round trip."""
    fetch: bool = False
    """Deprecated: fetchType FETCH."""
    fetchOne: bool = False
    """Deprecated: fetchType FETCH_ONE."""
    store: bool = False
    """Deprecated: fetchType STORE."""
    connectionPooling: Dyn[bool] | None = None
    """Accepted for Kestra's flows: a connection is opened per poll."""
    connectionPoolSize: Dyn[int] | None = None
    """Accepted for Kestra's flows: a connection is opened per poll."""

    @model_validator(mode="after")
    def _fires(self) -> JdbcTrigger:
        if str(self.fetchType).upper() == "NONE" and not (self.fetch or self.fetchOne or self.store):
            raise ValueError(_NEVER_FIRES)
        return self

    def query(self) -> JdbcQuery:
        """The query task this trigger runs at each poll (its properties, as Kestra's trigger builds its Query)."""
        own = set(Trigger.model_fields) | {"interval", "type"}
        values = self.model_dump(by_alias=True, exclude_unset=True)
        data = {key: value for key, value in values.items() if key in self.query_class.model_fields and key not in own}
        if str(self.fetchType).upper() == "NONE":
            data.pop("fetchType", None)
        data.setdefault("fetchType", self.fetchType)
        return self.query_class.model_validate({"id": self.id, "type": self.query_class.type_name, **data})

    def evaluate(self, ctx: RunContext) -> dict[str, Any] | None:
        """One poll: the trigger's variables when the query returned rows, None when it returned none."""
        outputs = self.query().run(ctx)
        return outputs if outputs.get("size") else None

    def claim(self, ctx: RunContext) -> dict[str, Any] | None:
        return self.evaluate(ctx)
