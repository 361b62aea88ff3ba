"""Does a Schedule's fire time (or a Webhook's call) pass its trigger's `conditions` and `when`? (KESTRA_SPEC §9.1,
§9.3) No I/O.

Kestra judges each fire time with the schedule conditions (DayWeek, DayWeekInMonth, Weekend, PublicHoliday,
DateTimeBetween, TimeBetween, Not, Or, Expression: `Condition.schedule_condition`; other condition types are
left out, as Kestra does), ANDed, with the fire's `trigger.date`, `trigger.next` and `trigger.previous`; a time
they refuse is skipped (no execution) and the schedule goes on. `scheduleConditions` (deprecated) count with
`conditions`. A condition that cannot judge (an expression that fails, a date that does not parse) raises
`ConditionError`: the fire is then recorded as a FAILED execution that says why (`state.fires`), as Kestra does,
so the mistake shows instead of a schedule that silently never runs. `trigger.next` / `trigger.previous` name
the next and previous times the conditions accept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from runner.errors import GitSyncError
from runner.plugin import Condition
from runner.registry import Registry
from runner.truthy import truthy

Evaluate = Callable[[str, dict[str, Any]], Any]
MAX_WALK = 1000
"""Fire times tried when looking for the next / previous time the conditions accept."""


class ConditionError(GitSyncError):
    """A Schedule trigger's condition or `when` cannot judge a fire time; the message says which and why."""


class ScheduleConditions:
    """Judges the fire times of Schedule triggers by their conditions and `when`."""

    def __init__(self, registry: Registry, evaluate: Evaluate) -> None:
        self.registry = registry
        self.evaluate = evaluate

    @staticmethod
    def applies(spec: Mapping[str, Any]) -> bool:
        """Whether the trigger has anything to judge (most have not: their fires skip this entirely)."""
        return bool(spec.get("conditions") or spec.get("scheduleConditions")) or spec.get("when") is not None

    def accepts(self, spec: Mapping[str, Any], trigger: Mapping[str, Any], *, schedule: bool = True) -> bool:
        """Whether the fire whose variables are `trigger` (a Schedule's date, next, previous) passes; `ConditionError`
        when a condition cannot judge it. With `schedule` false (a Webhook call: `trigger` holds its body, headers
        and parameters) every condition type counts, as Kestra judges a Webhook's, but a MultipleCondition."""
        event = _ScheduleEvent(dict(trigger), self, schedule)
        for condition in [*(spec.get("conditions") or []), *(spec.get("scheduleConditions") or [])]:
            if not event.holds(condition):
                return False
        when = spec.get("when")
        if when is None or isinstance(when, bool):
            return when is not False
        try:
            return truthy(event.evaluate(str(when)))
        except GitSyncError as exc:
            raise ConditionError(f"its `when` cannot be evaluated: {exc}") from exc

    def honoured(
        self,
        spec: Mapping[str, Any],
        trigger: dict[str, Any],
        following: Callable[[datetime], datetime | None],
        preceding: Callable[[datetime], datetime | None],
        variables: Callable[[datetime], dict[str, Any]],
        at: datetime,
    ) -> dict[str, Any]:
        """`trigger` with `next` and `previous` moved to the nearest fire times the conditions accept (None when
        none is found within MAX_WALK times, or when a condition cannot judge them)."""
        return {
            **trigger,
            "next": self._walk(spec, at, following, variables),
            "previous": self._walk(spec, at, preceding, variables),
        }

    def _walk(
        self,
        spec: Mapping[str, Any],
        at: datetime,
        step: Callable[[datetime], datetime | None],
        variables: Callable[[datetime], dict[str, Any]],
    ) -> str | None:
        moment: datetime | None = at
        for _ in range(MAX_WALK):
            moment = step(moment) if moment is not None else None
            if moment is None:
                return None
            candidate = variables(moment)
            try:
                if self.accepts(spec, candidate):
                    return str(candidate["date"])
            except ConditionError:
                return None
        return None


class _ScheduleEvent:
    """`runner.plugin.ExecutionEvent` over a fire's trigger variables."""

    def __init__(self, data: dict[str, Any], judge: ScheduleConditions, schedule: bool = True) -> None:
        self._data = data
        self._judge = judge
        self._schedule = schedule

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    @property
    def can_evaluate(self) -> bool:
        return True

    def evaluate(self, expression: str) -> Any:
        return self._judge.evaluate(expression, {"trigger": self._data, "schedule": self._data})

    def holds(self, condition: Any) -> bool:
        if not isinstance(condition, dict):
            return True
        cls = self._judge.registry.lookup(str(condition.get("type", "")))
        if cls is None or not issubclass(cls, Condition) or (self._schedule and not cls.schedule_condition):
            return True  # Kestra judges a Schedule's fires with its schedule conditions only
        name = cls.type_name.rsplit(".", 1)[-1]
        try:
            return cls.model_validate(condition).matches(self)
        except ValidationError as exc:
            raise ConditionError(f"condition {name} cannot be read: {exc}") from exc
        except ConditionError:
            raise
        except GitSyncError as exc:
            raise ConditionError(f"condition {name} cannot be evaluated: {exc}") from exc
