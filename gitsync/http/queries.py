"""The query parameters of the read routes, as pydantic models: the handlers validate with them and the OpenAPI
document describes them (`gitsync.http.openapi`). An unknown parameter is refused, so a typo is not silently a
filter that matches everything."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, WithJsonSchema

from gitsync.errors import GitSyncError
from runner.states import State

TriggerKindName = Literal["manual", "api", "webhook", "schedule", "flow", "subflow", "retry", "replay", "poll"]
LevelName = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
_NAME = r"^[A-Za-z0-9_.-]+$"


def _moment(value: object) -> datetime:
    """An ISO-8601 date-time with its zone, given as text (never a number of seconds)."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("give a date-time such as 2026-01-31T08:00:00Z")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date-time such as 2026-01-31T08:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no zone: add Z (UTC) or an offset such as +02:00")
    return moment


Moment = Annotated[
    datetime, PlainValidator(_moment), WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 40})
]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


_AFTER = "next_cursor of the previous page: the key of its last row (the next page starts after it)"


class Cursor(Query):
    cursor: str | None = Field(None, max_length=512, description=_AFTER)
    limit: int = Field(50, ge=1, le=500, description="rows per page")


class NumberCursor(Cursor):
    cursor: str | None = Field(None, pattern=r"^[0-9]{1,18}$", description=_AFTER)


class FlowQuery(Cursor):
    namespace: str | None = Field(None, max_length=300, pattern=_NAME, description="this namespace and its children")
    q: str | None = Field(None, max_length=200, description="part of the flow's uid (namespace.id)")
    source: str | None = Field(None, max_length=200)
    limit: int = Field(100, ge=1, le=1000, description="rows per page")


class TriggerQuery(Cursor):
    flow: str | None = Field(None, max_length=400, description="the flow's uid (namespace.id)")
    limit: int = Field(100, ge=1, le=1000, description="rows per page")


class ExecutionQuery(Cursor):
    flow: str | None = Field(None, max_length=400, description="the flow's uid (namespace.id)")
    namespace: str | None = Field(None, max_length=300, pattern=_NAME, description="this namespace and its children")
    state: list[State] | None = Field(None, max_length=len(State), description="one state, or several (a,b)")
    trigger_kind: list[TriggerKindName] | None = Field(None, max_length=8, description="how the runs were started")
    since: Moment | None = Field(None, description="created at or after (ISO-8601 with a zone)")
    until: Moment | None = Field(None, description="created before (ISO-8601 with a zone)")


class LogQuery(Query):
    cursor: str | None = Field(None, pattern=r"^[0-9]{1,18}$", description=_AFTER)
    limit: int = Field(500, ge=1, le=5000, description="lines per page")
    level: LevelName | None = Field(None, description="this level and above (TRACE < DEBUG < INFO < WARN < ERROR)")
    task_run_id: str | None = Field(None, max_length=100)
    q: str | None = Field(None, max_length=200, description="text the line contains (case-insensitive)")


class LogStreamQuery(Query):
    after: int = Field(0, ge=0, le=2**62, description="the id of the last line already shown")


class SyncQuery(NumberCursor):
    source: str | None = Field(None, max_length=200)


class StatusQuery(NumberCursor):
    commit: str | None = Field(None, min_length=4, max_length=64, pattern=r"^[0-9a-f]+$", description="a sha prefix")
    limit: int = Field(100, ge=1, le=1000, description="rows per page")


class SourceQuery(Query):
    revision: int | None = Field(None, ge=1, le=2**31, description="default: the active revision")


class DiffQuery(Query):
    from_: int = Field(alias="from", ge=1, le=2**31, description="the older revision")
    to: int | None = Field(None, ge=1, le=2**31, description="the newer revision (default: the active one)")


class QueryError(GitSyncError, ValueError):
    """Query parameters that do not fit; the message names each and what would work (answered 400)."""


def parse(model: type[Query], params: Mapping[str, str], multi: Mapping[str, Sequence[str]]) -> Query:
    """`params` (the last value of each name) validated by `model`; list fields take every value, split at commas."""
    data: dict[str, object] = dict(params)
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in multi and "list" in str(info.annotation):
            data[key] = [part for value in multi[key] for part in value.split(",") if part]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise QueryError("; ".join(_reason(error) for error in exc.errors())) from None


def _reason(error: object) -> str:
    assert isinstance(error, dict)
    where = ".".join(str(p) for p in error.get("loc", ()) if not isinstance(p, int)) or "query"
    if error.get("type") == "extra_forbidden":
        return f"unknown parameter {where!r}"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}"


def iso(moment: datetime | None) -> str | None:
    """A time in the state's form (UTC, milliseconds), so that it compares with the stored strings."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="milliseconds")
