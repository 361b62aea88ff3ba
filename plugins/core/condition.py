"""Trigger conditions (KESTRA_SPEC §8-9): each one current name plus its legacy `…Condition` names."""

from __future__ import annotations

import locale
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator

from plugins.core.states import StateName
from plugins.core.trigger import TimeWindow, parse_offset_time
from runner.cron import parse_timezone
from runner.errors import ExpressionError
from runner.plugin import Condition, ConditionList, ConditionMap, ExecutionEvent, Kind, Shape
from runner.truthy import truthy
from runner.types import Duration, Dyn, Labels, TaskId

_OLD = "io.kestra.core.models.conditions.types."
_NEW = "io.kestra.plugin.core.condition."
TRIGGER_DATE = "{{ trigger.date }}"
DayOfWeek = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


def _names(name: str) -> tuple[str, ...]:
    return (f"{_OLD}{name}Condition", f"{_NEW}{name}Condition")


class ExecutionStatus(Condition):
    """The upstream execution's state is in `in` and not in `notIn`."""

    type_name: ClassVar[str] = _NEW + "ExecutionStatus"
    aliases: ClassVar[tuple[str, ...]] = _names("ExecutionStatus")

    in_: Dyn[list[StateName]] | None = Field(default=None, alias="in")
    """Accepted states."""
    notIn: Dyn[list[StateName]] | None = None
    """Refused states."""

    def matches(self, event: ExecutionEvent) -> bool:
        state = event.get("state")
        return (not self.in_ or state in self.in_) and (not self.notIn or state not in self.notIn)


class ExecutionFlow(Condition):
    """The upstream execution belongs to `namespace.flowId`."""

    type_name: ClassVar[str] = _NEW + "ExecutionFlow"
    aliases: ClassVar[tuple[str, ...]] = _names("ExecutionFlow")

    namespace: str
    """Namespace to compare with."""
    flowId: str
    """Flow id to compare with."""

    def matches(self, event: ExecutionEvent) -> bool:
        return self.namespace == event.get("namespace") and self.flowId == event.get("flowId")


class ExecutionNamespace(Condition):
    """The upstream execution's namespace equals (or starts / ends with) `namespace`."""

    type_name: ClassVar[str] = _NEW + "ExecutionNamespace"
    aliases: ClassVar[tuple[str, ...]] = _names("ExecutionNamespace")

    namespace: str
    """Namespace to compare with."""
    comparison: Dyn[Literal["EQUALS", "PREFIX", "SUFFIX"]] | None = None
    """How to compare (EQUALS by default)."""
    prefix: bool = False
    """Deprecated: same as comparison PREFIX."""

    def matches(self, event: ExecutionEvent) -> bool:
        namespace = str(event.get("namespace", ""))
        comparison = str(self.comparison or ("PREFIX" if self.prefix else "EQUALS")).upper()
        if comparison == "PREFIX":
            return namespace.startswith(self.namespace)
        if comparison == "SUFFIX":
            return namespace.endswith(self.namespace)
        return namespace == self.namespace


class ExecutionLabels(Condition):
    """The upstream execution carries all these labels."""

    type_name: ClassVar[str] = _NEW + "ExecutionLabels"
    aliases: ClassVar[tuple[str, ...]] = _names("ExecutionLabels")

    labels: Labels

    def matches(self, event: ExecutionEvent) -> bool:
        labels = event.get("labels") or {}
        return all(str(labels.get(k)) == str(v) for k, v in (self.labels or {}).items())


class ExecutionOutputs(Condition):
    """An expression on the upstream execution's outputs is true."""

    type_name: ClassVar[str] = _NEW + "ExecutionOutputs"
    aliases: ClassVar[tuple[str, ...]] = _names("ExecutionOutputs")

    expression: str
    """Expression; the condition holds when it renders true."""

    def matches(self, event: ExecutionEvent) -> bool:
        return not event.can_evaluate or truthy(event.evaluate(self.expression))


class Expression(Condition):
    """An expression is true."""

    schedule_condition: ClassVar[bool] = True
    type_name: ClassVar[str] = _NEW + "Expression"
    aliases: ClassVar[tuple[str, ...]] = (_OLD + "VariableCondition", _NEW + "ExpressionCondition")

    expression: str
    """Expression; the condition holds when it renders true."""

    def matches(self, event: ExecutionEvent) -> bool:
        return not event.can_evaluate or truthy(event.evaluate(self.expression))


class Not(Condition):
    """None of the conditions holds."""

    type_name: ClassVar[str] = _NEW + "Not"
    schedule_condition: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = _names("Not")
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"conditions": ("condition", "list")}

    conditions: ConditionList = Field(min_length=1)

    def matches(self, event: ExecutionEvent) -> bool:
        return not any(event.holds(c) for c in self.conditions)


class Or(Condition):
    """At least one of the conditions holds."""

    type_name: ClassVar[str] = _NEW + "Or"
    schedule_condition: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = _names("Or")
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"conditions": ("condition", "list")}

    conditions: ConditionList = Field(min_length=1)

    def matches(self, event: ExecutionEvent) -> bool:
        return any(event.holds(c) for c in self.conditions)


class _DateCondition(Condition):
    schedule_condition: ClassVar[bool] = True

    date: str = TRIGGER_DATE
    """The date to test; rendered (the trigger's date by default)."""

    def moment(self, event: ExecutionEvent) -> datetime:
        """The rendered `date` as a date-time (a plain date is its midnight)."""
        value = event.evaluate(self.date) if "{{" in self.date or "{%" in self.date else self.date
        return parse_moment(value, f"{self.type_name.rsplit('.', 1)[-1]}'s date")

    def text(self, event: ExecutionEvent, value: Any) -> str:
        """A dynamic property's value, rendered when it is an expression."""
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            return str(event.evaluate(value))
        return str(value)


class DayWeek(_DateCondition):
    """The date falls on `dayOfWeek`."""

    type_name: ClassVar[str] = _NEW + "DayWeek"
    aliases: ClassVar[tuple[str, ...]] = _names("DayWeek")

    dayOfWeek: Dyn[DayOfWeek]
    """MONDAY … SUNDAY."""

    def matches(self, event: ExecutionEvent) -> bool:
        return _weekday(self.text(event, self.dayOfWeek)) == self.moment(event).weekday()


class DayWeekInMonth(_DateCondition):
    """The date is the first/second/third/fourth/last `dayOfWeek` of its month."""

    type_name: ClassVar[str] = _NEW + "DayWeekInMonth"
    aliases: ClassVar[tuple[str, ...]] = _names("DayWeekInMonth")

    dayOfWeek: Dyn[DayOfWeek]
    """MONDAY … SUNDAY."""
    dayInMonth: Dyn[Literal["FIRST", "LAST", "SECOND", "THIRD", "FOURTH"]]
    """Which occurrence of that day in the month."""

    def matches(self, event: ExecutionEvent) -> bool:
        day = self.moment(event).date()
        if _weekday(self.text(event, self.dayOfWeek)) != day.weekday():
            return False
        which = self.text(event, self.dayInMonth).upper()
        if which == "LAST":
            return (day + timedelta(days=7)).month != day.month
        nth = {"FIRST": 1, "SECOND": 2, "THIRD": 3, "FOURTH": 4}.get(which)
        if nth is None:
            raise ExpressionError(f"DayWeekInMonth's dayInMonth is {which!r}: use FIRST, SECOND, THIRD, FOURTH or LAST")
        return (day.day - 1) // 7 + 1 == nth


class Weekend(_DateCondition):
    """The date is a Saturday or Sunday."""

    type_name: ClassVar[str] = _NEW + "Weekend"
    aliases: ClassVar[tuple[str, ...]] = _names("Weekend")

    def matches(self, event: ExecutionEvent) -> bool:
        return self.moment(event).weekday() >= 5


class TimeBetween(_DateCondition):
    """The time of day of the date is between `after` and `before` (both excluded)."""

    type_name: ClassVar[str] = _NEW + "TimeBetween"
    aliases: ClassVar[tuple[str, ...]] = _names("TimeBetween")

    after: str | None = None
    """Earliest time, e.g. 09:00:00Z (an offset may follow; UTC without one)."""
    before: str | None = None
    """Latest time."""

    @field_validator("after", "before")
    @classmethod
    def _time_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_offset_time(value)
        return value

    def matches(self, event: ExecutionEvent) -> bool:
        if self.after is None and self.before is None:
            raise ExpressionError("TimeBetween needs `after`, `before` or both")
        moment = self.moment(event)
        offset = moment.utcoffset() or timedelta(0)
        # Kestra compares offset times as instants on one day: the time of day minus its offset (no wrap-around)
        current = timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second) - offset
        current += timedelta(microseconds=moment.microsecond)
        after = _instant_of_day(self.after)
        before = _instant_of_day(self.before)
        return (after is None or current > after) and (before is None or current < before)


class DateTimeBetween(_DateCondition):
    """The date is between `after` and `before` (both excluded)."""

    type_name: ClassVar[str] = _NEW + "DateTimeBetween"
    aliases: ClassVar[tuple[str, ...]] = _names("DateTimeBetween")

    after: datetime | None = None
    """Earliest date-time (ISO-8601 with its offset; UTC without one)."""
    before: datetime | None = None
    """Latest date-time (ISO-8601 with its offset; UTC without one)."""

    def matches(self, event: ExecutionEvent) -> bool:
        if self.after is None and self.before is None:
            raise ExpressionError("DateTimeBetween needs `after`, `before` or both")
        moment = self.moment(event)
        after = _aware(self.after)
        before = _aware(self.before)
        return (after is None or moment > after) and (before is None or moment < before)


class PublicHoliday(_DateCondition):
    """The date is a public holiday in `country` (and `subDivision`)."""

    type_name: ClassVar[str] = _NEW + "PublicHoliday"
    aliases: ClassVar[tuple[str, ...]] = _names("PublicHoliday")

    country: str | None = None
    """ISO 3166 country code (the server's locale when unset)."""
    subDivision: str | None = None
    """ISO 3166-2 subdivision."""

    def matches(self, event: ExecutionEvent) -> bool:
        country = self.text(event, self.country) if self.country else _locale_country()
        subdivision = self.text(event, self.subDivision) if self.subDivision else None
        return is_public_holiday(self.moment(event).date(), country, subdivision)


class HasRetryAttempt(Condition):
    """The upstream execution had a retried task run with an attempt in one of these states."""

    type_name: ClassVar[str] = _NEW + "HasRetryAttempt"
    aliases: ClassVar[tuple[str, ...]] = _names("HasRetryAttempt")

    in_: Dyn[list[StateName]] | None = Field(default=None, alias="in")
    """Accepted states."""
    notIn: Dyn[list[StateName]] | None = None
    """Refused states."""

    def matches(self, event: ExecutionEvent) -> bool:
        states = event.get("retriedAttemptStates") or []
        return any(
            (not self.in_ or state in self.in_) and (not self.notIn or state not in self.notIn) for state in states
        )


class MultipleCondition(Condition):
    """Deprecated (use Flow preconditions): all named conditions were met within a window.

    It is judged over a window of upstream executions, not on one (gitsync.schedule.flow_triggers gathers them);
    nested inside Not or Or, where no window can be kept, it never holds."""

    type_name: ClassVar[str] = _NEW + "MultipleCondition"
    aliases: ClassVar[tuple[str, ...]] = (_OLD + "MultipleCondition",)
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"conditions": ("condition", "map")}

    id: TaskId
    """Identifies the window state."""
    timeWindow: TimeWindow | None = Field(default=None, validation_alias=AliasChoices("timeWindow", "sla", "timeSLA"))
    """The window in which every condition must be met (a day from midnight by default)."""
    window: Duration | None = None
    """Deprecated (timeWindow.window): length of the window (P1D by default)."""
    windowAdvance: Duration | None = None
    """Deprecated (timeWindow.windowAdvance): offset of the window start (0 by default)."""
    conditions: ConditionMap = Field(min_length=1)
    """Name -> condition; every one must be met."""
    resetOnSuccess: bool = True
    """Start a new window once all are met."""

    def time_window(self) -> TimeWindow:
        """The window, with the deprecated `window` / `windowAdvance` folded in."""
        base = self.timeWindow or TimeWindow()
        changes = {"window": self.window, "windowAdvance": self.windowAdvance}
        return base.model_copy(update={k: v for k, v in changes.items() if v is not None})

    def matches(self, event: ExecutionEvent) -> bool:
        return False


class FlowCondition(Condition):
    """The flow that holds the trigger is `namespace.flowId` (deprecated: use ExecutionFlow for the upstream)."""

    type_name: ClassVar[str] = _NEW + "FlowCondition"
    aliases: ClassVar[tuple[str, ...]] = (_OLD + "FlowCondition",)

    namespace: str
    """Namespace to compare with."""
    flowId: str
    """Flow id to compare with."""

    def matches(self, event: ExecutionEvent) -> bool:
        listening = event.get("listening") or {}
        return listening.get("namespace") == self.namespace and listening.get("flowId") == self.flowId


class FlowNamespaceCondition(Condition):
    """The namespace of the flow that holds the trigger equals (or starts with) `namespace` (deprecated: use
    ExecutionNamespace for the upstream)."""

    type_name: ClassVar[str] = _NEW + "FlowNamespaceCondition"
    aliases: ClassVar[tuple[str, ...]] = (_OLD + "FlowNamespaceCondition",)

    namespace: str
    """Namespace to compare with."""
    prefix: bool = False
    """Also match namespaces that start with `namespace`."""

    def matches(self, event: ExecutionEvent) -> bool:
        namespace = str((event.get("listening") or {}).get("namespace", ""))
        return namespace.startswith(self.namespace) if self.prefix else namespace == self.namespace


_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def _weekday(name: str) -> int:
    try:
        return _DAYS.index(name.strip().upper())
    except ValueError:
        raise ExpressionError(f"{name!r} is not a day of the week: use MONDAY … SUNDAY") from None


def parse_moment(value: Any, what: str) -> datetime:
    """A rendered date: an ISO-8601 date-time (with its offset, UTC without one; a `[Zone]` suffix is read) or
    date (its midnight, UTC)."""
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    zone_name = None
    if text.endswith("]") and "[" in text:
        text, _, zone_name = text[:-1].partition("[")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ExpressionError(
            f"{what} is {str(value)!r}, which is not an ISO-8601 date or date-time (e.g. 2024-01-31T09:00:00Z)"
        ) from None
    if moment.tzinfo is None and zone_name:
        moment = moment.replace(tzinfo=parse_timezone(zone_name))
    return _aware(moment)


def _instant_of_day(text: str | None) -> timedelta | None:
    return None if text is None else parse_offset_time(text)


def _aware(moment: datetime | None) -> Any:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _locale_country() -> str:
    name = locale.getlocale()[0] or ""
    country = name.partition("_")[2][:2]
    if not country:
        raise ExpressionError(
            "PublicHoliday has no `country` and the server's locale names none: set `country` (e.g. FR, US)"
        )
    return country


def is_public_holiday(day: date, country: str, subdivision: str | None = None) -> bool:
    """Whether `day` is a public holiday in `country` (ISO 3166-1 alpha-2) and `subdivision` (ISO 3166-2, with
    or without the country prefix), by the `holidays` package's calendars."""
    import holidays

    code = country.strip().upper()
    sub = subdivision.strip().upper() if subdivision else None
    if sub and sub.startswith(code + "-"):
        sub = sub[len(code) + 1 :]
    try:
        calendar = holidays.country_holidays(code, subdiv=sub, years=day.year)
    except NotImplementedError:
        raise ExpressionError(
            f"PublicHoliday: no holiday calendar for country {country!r}"
            + (f" and subdivision {subdivision!r}" if subdivision else "")
            + ": use an ISO 3166-1 code such as FR, DE or US (and an ISO 3166-2 subdivision)"
        ) from None
    return day in calendar
