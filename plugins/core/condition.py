"""Trigger conditions (KESTRA_SPEC §8-9): each one current name plus its legacy `…Condition` names."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from plugins.core.states import StateName
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

    type_name: ClassVar[str] = _NEW + "Expression"
    aliases: ClassVar[tuple[str, ...]] = (_OLD + "VariableCondition", _NEW + "ExpressionCondition")

    expression: str
    """Expression; the condition holds when it renders true."""

    def matches(self, event: ExecutionEvent) -> bool:
        return not event.can_evaluate or truthy(event.evaluate(self.expression))


class Not(Condition):
    """None of the conditions holds."""

    type_name: ClassVar[str] = _NEW + "Not"
    aliases: ClassVar[tuple[str, ...]] = _names("Not")
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"conditions": ("condition", "list")}

    conditions: ConditionList = Field(min_length=1)

    def matches(self, event: ExecutionEvent) -> bool:
        return not any(event.holds(c) for c in self.conditions)


class Or(Condition):
    """At least one of the conditions holds."""

    type_name: ClassVar[str] = _NEW + "Or"
    aliases: ClassVar[tuple[str, ...]] = _names("Or")
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"conditions": ("condition", "list")}

    conditions: ConditionList = Field(min_length=1)

    def matches(self, event: ExecutionEvent) -> bool:
        return any(event.holds(c) for c in self.conditions)


class _DateCondition(Condition):
    date: str = TRIGGER_DATE
    """The date to test; rendered (the trigger's date by default)."""


class DayWeek(_DateCondition):
    """The date falls on `dayOfWeek`."""

    type_name: ClassVar[str] = _NEW + "DayWeek"
    aliases: ClassVar[tuple[str, ...]] = _names("DayWeek")

    dayOfWeek: Dyn[DayOfWeek]
    """MONDAY … SUNDAY."""


class DayWeekInMonth(_DateCondition):
    """The date is the first/second/third/fourth/last `dayOfWeek` of its month."""

    type_name: ClassVar[str] = _NEW + "DayWeekInMonth"
    aliases: ClassVar[tuple[str, ...]] = _names("DayWeekInMonth")

    dayOfWeek: Dyn[DayOfWeek]
    """MONDAY … SUNDAY."""
    dayInMonth: Dyn[Literal["FIRST", "LAST", "SECOND", "THIRD", "FOURTH"]]
    """Which occurrence of that day in the month."""


class Weekend(_DateCondition):
    """The date is a Saturday or Sunday."""

    type_name: ClassVar[str] = _NEW + "Weekend"
    aliases: ClassVar[tuple[str, ...]] = _names("Weekend")


class TimeBetween(_DateCondition):
    """The time of day of the date is between `after` and `before`."""

    type_name: ClassVar[str] = _NEW + "TimeBetween"
    aliases: ClassVar[tuple[str, ...]] = _names("TimeBetween")

    after: str | None = None
    """Earliest time, e.g. 09:00:00Z."""
    before: str | None = None
    """Latest time."""


class DateTimeBetween(_DateCondition):
    """The date is between `after` and `before`."""

    type_name: ClassVar[str] = _NEW + "DateTimeBetween"
    aliases: ClassVar[tuple[str, ...]] = _names("DateTimeBetween")

    after: datetime | str | None = None
    """Earliest date-time (ISO-8601)."""
    before: datetime | str | None = None
    """Latest date-time (ISO-8601)."""


class PublicHoliday(_DateCondition):
    """The date is a public holiday in `country` (and `subDivision`)."""

    type_name: ClassVar[str] = _NEW + "PublicHoliday"
    aliases: ClassVar[tuple[str, ...]] = _names("PublicHoliday")

    country: str | None = None
    """ISO 3166 country code (the server's locale when unset)."""
    subDivision: str | None = None
    """ISO 3166-2 subdivision."""


class HasRetryAttempt(Condition):
    """The upstream execution had a retried task run in one of these states."""

    type_name: ClassVar[str] = _NEW + "HasRetryAttempt"
    aliases: ClassVar[tuple[str, ...]] = _names("HasRetryAttempt")

    in_: Dyn[list[StateName]] | None = Field(default=None, alias="in")
    """Accepted states."""
    notIn: Dyn[list[StateName]] | None = None
    """Refused states."""


class MultipleCondition(Condition):
    """Deprecated (use Flow preconditions): all named conditions were met within a window."""

    type_name: ClassVar[str] = _NEW + "MultipleCondition"
    aliases: ClassVar[tuple[str, ...]] = (_OLD + "MultipleCondition",)
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"conditions": ("condition", "map")}

    id: TaskId
    """Identifies the window state."""
    window: Duration | None = None
    """Length of the window (P1D by default)."""
    windowAdvance: Duration | None = None
    """Offset of the window start (0 by default)."""
    conditions: ConditionMap = Field(min_length=1)
    """Name -> condition; every one must be met."""
    resetOnSuccess: bool = True
    """Start a new window once all are met."""


class FlowCondition(Condition):
    """The upstream execution belongs to `namespace.flowId`."""

    type_name: ClassVar[str] = _NEW + "FlowCondition"
    aliases: ClassVar[tuple[str, ...]] = (_OLD + "FlowCondition",)

    namespace: str
    """Namespace to compare with."""
    flowId: str
    """Flow id to compare with."""


class FlowNamespaceCondition(Condition):
    """The upstream flow's namespace equals (or starts with) `namespace`."""

    type_name: ClassVar[str] = _NEW + "FlowNamespaceCondition"
    aliases: ClassVar[tuple[str, ...]] = (_OLD + "FlowNamespaceCondition",)

    namespace: str
    """Namespace to compare with."""
    prefix: bool = False
    """Also match namespaces that start with `namespace`."""
