"""Triggers: `Schedule` (cron), `Flow` (another flow's execution ended), `Webhook` (HTTP call)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from plugins.core.states import StateName
from plugins.values import Options
from runner.cron import parse_cron, parse_timezone
from runner.plugin import ConditionList, Kind, Shape, Trigger
from runner.types import Duration, Dyn


class Schedule(Trigger):
    """Start an execution at the times a cron expression names."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.trigger.Schedule"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.models.triggers.types.Schedule",)
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {
        "conditions": ("condition", "list"),
        "scheduleConditions": ("condition", "list"),
    }
    inert: ClassVar[dict[str, str]] = {
        **Trigger.inert,
        "backfill": "deprecated; backfills are a server-side operation, not part of the flow",
        "allowConcurrent": "gitsync never overlaps two runs of one schedule",
    }

    cron: str
    """5 fields (minute hour day-of-month month day-of-week), 6 with withSeconds, or @daily etc."""
    withSeconds: bool = False
    """The cron has a leading seconds field."""
    timezone: str | None = None
    """IANA time zone the cron is read in (the server's zone when unset)."""
    inputs: dict[str, Any] | None = None
    """Inputs of the executions it creates; rendered."""
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = None
    """Fires missed while the service was down: run all, the last one, or none (ALL by default)."""
    lateMaximumDelay: Duration | None = None
    """Skip a fire that could not start within this delay."""
    backfill: dict[str, Any] | None = None
    """Deprecated: backfills are started from the UI/API."""
    scheduleConditions: ConditionList | None = None
    """Deprecated (0.15) name of `conditions`."""
    allowConcurrent: bool = False
    """Allow a fire while the previous execution of this trigger still runs."""

    @model_validator(mode="after")
    def _cron_parses(self) -> Schedule:
        parse_cron(self.cron, with_seconds=self.withSeconds)  # CronError names the field and why
        return self

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timezone(value)
        return value


def parse_offset_time(text: str) -> timedelta:
    """A time of day with an optional offset (09:00:00Z, 09:00:00+02:00; UTC without one), as the instant of the
    day it names: the time minus its offset."""
    try:
        moment = time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day such as 09:00:00, 09:00:00Z or 09:00:00+02:00") from None
    offset = moment.utcoffset() or timedelta(0)
    clock = timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second, microseconds=moment.microsecond)
    return clock - offset


class TimeWindow(Options):
    """The window in which every precondition must be met (KESTRA_SPEC §9.2). Times of day are UTC unless they
    carry an offset (09:00:00+01:00)."""

    type: Literal["DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_WINDOW", "DAILY_TIME_DEADLINE"] = "DURATION_WINDOW"
    """DURATION_WINDOW: fixed windows of `window` from midnight (shifted by `windowAdvance`); SLIDING_WINDOW: the
    last `window` before each upstream end; DAILY_TIME_WINDOW: between `startTime` and `endTime` each day;
    DAILY_TIME_DEADLINE: from midnight until `deadline` each day."""
    window: Duration | None = None
    """Length of the window (P1D by default)."""
    windowAdvance: Duration | None = None
    """DURATION_WINDOW: shift of the windows' start from midnight."""
    startTime: str | None = None
    """DAILY_TIME_WINDOW: when the window opens each day."""
    endTime: str | None = None
    """DAILY_TIME_WINDOW: when it closes."""
    deadline: str | None = None
    """DAILY_TIME_DEADLINE: the time of day by which every precondition must be met."""

    @field_validator("startTime", "endTime", "deadline")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        if value is not None:
            parse_offset_time(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> TimeWindow:
        if self.type == "DAILY_TIME_WINDOW" and (self.startTime is None or self.endTime is None):
            raise ValueError("a DAILY_TIME_WINDOW needs startTime and endTime")
        if self.type == "DAILY_TIME_DEADLINE" and self.deadline is None:
            raise ValueError("a DAILY_TIME_DEADLINE needs a deadline")
        if self.window is not None and self.window <= timedelta(0):
            raise ValueError("the window must be longer than zero")
        return self


class UpstreamFlow(Options):
    """An upstream flow whose execution must reach one of `states`."""

    namespace: str
    flowId: str | None = None
    states: list[StateName] | None = None
    labels: dict[str, Any] | None = None


class Filter(Options):
    field: Literal["FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION"]
    type: Literal[
        "EQUAL_TO", "NOT_EQUAL_TO", "IN", "NOT_IN", "IS_TRUE", "IS_FALSE", "IS_NULL", "IS_NOT_NULL",
        "STARTS_WITH", "ENDS_WITH", "REGEX", "CONTAINS",
    ]  # fmt: skip
    value: str | None = None
    values: list[str] | None = None


class Where(Options):
    id: str
    operand: Literal["AND", "OR"] = "AND"
    filters: list[Filter] = Field(min_length=1)


class Preconditions(Options):
    """All `flows` (and `where` filters) must be satisfied within the time window."""

    id: str | None = None
    timeWindow: TimeWindow | None = None
    resetOnSuccess: bool = True
    flows: list[UpstreamFlow] | None = None
    where: list[Where] | None = None


class Flow(Trigger):
    """Start an execution when an execution of another flow ends (filtered by conditions/preconditions)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.trigger.Flow"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.models.triggers.types.Flow",)

    inputs: dict[str, Any] | None = None
    """Inputs of the executions it creates; `{{ trigger.outputs.x }}` reads the upstream outputs."""
    states: Dyn[list[StateName]] | None = None
    """Upstream states that fire it (all terminal states by default)."""
    preconditions: Preconditions | None = None
    """Upstream executions that must all have happened within a window."""


class Webhook(Trigger):
    """Start an execution when `/api/v1/executions/webhook/{namespace}/{flowId}/{key}` is called."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.trigger.Webhook"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.models.triggers.types.Webhook",)

    key: str = Field(min_length=1, max_length=256)
    """The secret part of the URL."""
    inputs: dict[str, Any] | None = None
    """Inputs of the executions it creates; rendered (`{{ trigger.body }}` …)."""
    wait: bool = False
    """Hold the HTTP request until the execution ends."""
    returnOutputs: bool = False
    """With wait: respond with the flow's outputs."""
    responseContentType: str | None = None
    """Content-Type of the response."""
