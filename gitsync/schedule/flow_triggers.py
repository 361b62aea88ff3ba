"""Does an execution's end fire a Flow trigger? (KESTRA_SPEC §9.2) Pure: the spec, the event and `now` in.

`event` holds the upstream execution: executionId, namespace, flowId, flowRevision, state, outputs, labels and
retriedAttemptStates, with `listening` (namespace and flowId of the flow holding the trigger). It is judged in
Kestra's order:

1. `states` (every terminal state by default), the trigger's `when`, and its plain `conditions` (ANDed; each class
   judges the event itself, `Condition.matches`; a condition that cannot judge does not hold, and says why);
2. its *windows*: each MultipleCondition among the conditions and the `preconditions` block name entries (the
   MultipleCondition's named conditions; the preconditions' `flows` and `where` filters). The event marks the
   entries it satisfies; the trigger fires when every entry of every window is marked inside its time window
   (`bounds`). The marks are kept by `gitsync.state.preconditions`, which applies `resetOnSuccess`.

A window's entries are keyed by their content, so an edited entry starts unmarked; windows by their id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from runner.errors import GitSyncError
from runner.plugin import Condition
from runner.registry import Registry
from runner.states import TERMINAL_STATES
from runner.truthy import truthy

log = logging.getLogger("gitsync.triggers")

TERMINAL = tuple(state.value for state in TERMINAL_STATES)
"""A Flow trigger without `states` fires on any end of the upstream execution."""
Evaluate = Callable[[str, dict[str, Any]], Any]
DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MULTIPLE_CONDITION = "io.kestra.plugin.core.condition.MultipleCondition"


@dataclass(frozen=True)
class TimeSpan:
    """A window's time rule, read from a `timeWindow` mapping (KESTRA_SPEC §9.2)."""

    type: str = "DURATION_WINDOW"
    window: timedelta = DAY
    advance: timedelta = timedelta(0)
    start: timedelta | None = None  # DAILY_TIME_WINDOW: instant of the day it opens (UTC)
    end: timedelta | None = None
    deadline: timedelta | None = None  # DAILY_TIME_DEADLINE


@dataclass(frozen=True)
class Window:
    """One MultipleCondition or the preconditions block of a trigger, as this event leaves it."""

    id: str  # "preconditions:<id>" or "condition:<id>"
    span: TimeSpan
    reset_on_success: bool
    entries: tuple[str, ...]  # the key of every entry
    satisfied: tuple[str, ...]  # the entries this event satisfies


@dataclass(frozen=True)
class Judgement:
    passes: bool  # states, when and the plain conditions hold
    windows: tuple[Window, ...] = ()
    reason: str | None = None  # why it does not pass, for the log

    @property
    def contributes(self) -> bool:
        """Whether this event satisfies an entry of some window (a window only fires on an event it needs)."""
        return any(w.satisfied for w in self.windows) or not any(w.entries for w in self.windows)


def matches(spec: dict[str, Any], event: dict[str, Any], registry: Registry, evaluate: Evaluate | None = None) -> bool:
    """Whether the event fires the trigger when no window holds earlier marks (each window must be completed by
    this one event)."""
    judged = judge(spec, event, registry, evaluate)
    return judged.passes and judged.contributes and all(set(w.entries) <= set(w.satisfied) for w in judged.windows)


def judge(
    spec: dict[str, Any], event: dict[str, Any], registry: Registry, evaluate: Evaluate | None = None
) -> Judgement:
    """What the trigger makes of this event: whether it passes its states, `when` and plain conditions, and
    which entries of its windows it satisfies."""
    states = spec.get("states") or TERMINAL
    if event.get("state") not in states:
        return Judgement(False, reason=f"the upstream state {event.get('state')} is not one of {list(states)}")
    judged = FlowEvent(event, registry, evaluate)
    when = spec.get("when")
    if when is not None and not judged.when(when):
        return Judgement(False, reason="its `when` is false")
    windows: list[Window] = []
    for condition in spec.get("conditions") or []:
        cls = registry.lookup(str(condition.get("type", ""))) if isinstance(condition, dict) else None
        if cls is not None and cls.type_name == MULTIPLE_CONDITION:
            window = judged.multiple_condition(condition)
            if window is None:
                return Judgement(False, reason="a MultipleCondition cannot be read")
            windows.append(window)
        elif not judged.holds(condition):
            return Judgement(False, reason=f"condition {_name(condition)} does not hold")
    preconditions = spec.get("preconditions")
    if isinstance(preconditions, dict):
        windows.append(judged.preconditions(preconditions))
    return Judgement(True, tuple(windows))


def bounds(span: TimeSpan, now: datetime) -> tuple[datetime, datetime] | None:
    """The time window `now` falls in, [start, end): marks made in it count together. None when `now` is in none
    (before a DAILY_TIME_WINDOW opens or after it closes, past a DAILY_TIME_DEADLINE): the event is not counted."""
    if span.type == "SLIDING_WINDOW":
        return now - span.window, now + timedelta(milliseconds=1)  # marks are stored to the millisecond
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if span.type == "DAILY_TIME_WINDOW":
        start, end = midnight + (span.start or timedelta(0)), midnight + (span.end or DAY)
        return (start, end) if start <= now < end else None
    if span.type == "DAILY_TIME_DEADLINE":
        end = midnight + (span.deadline or DAY)
        return (midnight, end) if now < end else None
    # DURATION_WINDOW: fixed windows of `window` laid from midnight UTC (the epoch's), shifted by `advance`
    base = _EPOCH + span.advance
    start = base + span.window * ((now - base) // span.window)
    return start, start + span.window


def read_span(raw: Mapping[str, Any] | None, *, window: Any = None, advance: Any = None) -> TimeSpan:
    """A `timeWindow` mapping (as the spec holds it) as a TimeSpan; `window`/`advance` override its own (the
    deprecated MultipleCondition properties)."""
    from plugins.core.trigger import parse_offset_time
    from runner.durations import parse_duration

    raw = raw or {}

    def duration(value: Any, default: timedelta) -> timedelta:
        if isinstance(value, timedelta):
            return value
        return parse_duration(value) if isinstance(value, str) and value else default

    def clock(name: str) -> timedelta | None:
        value = raw.get(name)
        return parse_offset_time(value) if isinstance(value, str) else None

    return TimeSpan(
        type=str(raw.get("type") or "DURATION_WINDOW").upper(),
        window=duration(window if window is not None else raw.get("window"), DAY),
        advance=duration(advance if advance is not None else raw.get("windowAdvance"), timedelta(0)),
        start=clock("startTime"),
        end=clock("endTime"),
        deadline=clock("deadline"),
    )


def flow_context(event: Mapping[str, Any]) -> dict[str, Any]:
    """What a Flow trigger's expressions read: the event as `trigger`, and its fields as top-level names (Kestra
    2.0's `when` context: namespace, flowId, state, labels, outputs, hasRetryAttempt)."""
    upstream = {k: v for k, v in event.items() if k not in ("listening", "retriedAttemptStates")}
    return {
        **upstream,
        "hasRetryAttempt": bool(event.get("retriedAttemptStates")),
        "trigger": upstream,
        "execution": {"id": event.get("executionId"), "state": event.get("state")},
    }


class FlowEvent:
    """`runner.plugin.ExecutionEvent` over the event mapping; resolves nested conditions by the registry."""

    def __init__(self, data: dict[str, Any], registry: Registry, evaluate: Evaluate | None) -> None:
        self._data = data
        self._registry = registry
        self._evaluate = evaluate

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    @property
    def can_evaluate(self) -> bool:
        return self._evaluate is not None

    def evaluate(self, expression: str) -> Any:
        if self._evaluate is None:
            raise LookupError("no expression evaluator was given")
        return self._evaluate(expression, flow_context(self._data))

    def when(self, expression: str | bool) -> bool:
        if isinstance(expression, bool) or not self.can_evaluate:
            return bool(expression) if isinstance(expression, bool) else True
        try:
            return truthy(self.evaluate(expression))
        except GitSyncError as exc:
            log.warning("the `when` of a Flow trigger cannot be evaluated, so it does not fire: %s", exc)
            return False

    def holds(self, condition: Any) -> bool:
        if not isinstance(condition, dict):
            return True
        cls = self._registry.lookup(str(condition.get("type", "")))
        if cls is None or not issubclass(cls, Condition):
            return True  # not a condition this registry knows: it does not restrict (as before)
        try:
            model = cls.model_validate(condition)
        except ValidationError as exc:
            log.warning("condition %s cannot be read, so it does not hold: %s", cls.type_name, exc)
            return False
        try:
            return model.matches(self)
        except GitSyncError as exc:
            log.warning("condition %s cannot be evaluated, so it does not hold: %s", cls.type_name, exc)
            return False

    def multiple_condition(self, condition: dict[str, Any]) -> Window | None:
        conditions = condition.get("conditions")
        if not isinstance(conditions, dict) or not condition.get("id"):
            log.warning("a MultipleCondition needs an id and a map of conditions, so it does not hold")
            return None
        try:
            span = read_span(
                condition.get("timeWindow") or condition.get("sla") or condition.get("timeSLA"),
                window=condition.get("window"),
                advance=condition.get("windowAdvance"),
            )
        except (ValueError, TypeError) as exc:
            log.warning("MultipleCondition %s has a time window that cannot be read: %s", condition["id"], exc)
            return None
        entries = {f"{name}:{_digest(c)}": c for name, c in conditions.items()}
        return Window(
            id=f"condition:{condition['id']}",
            span=span,
            reset_on_success=condition.get("resetOnSuccess") is not False,
            entries=tuple(entries),
            satisfied=tuple(key for key, c in entries.items() if self.holds(c)),
        )

    def preconditions(self, block: dict[str, Any]) -> Window:
        entries: dict[str, bool] = {}
        for upstream in block.get("flows") or []:
            entries[f"flow:{_digest(upstream)}"] = _upstream_matches(upstream, self._data)
        for where in block.get("where") or []:
            entries[f"where:{where.get('id')}:{_digest(where)}"] = self._where_matches(where)
        return Window(
            id=f"preconditions:{block.get('id') or ''}",
            span=read_span(block.get("timeWindow")),
            reset_on_success=block.get("resetOnSuccess") is not False,
            entries=tuple(entries),
            satisfied=tuple(key for key, met in entries.items() if met),
        )

    def _where_matches(self, where: dict[str, Any]) -> bool:
        results = (self._filter(f) for f in where.get("filters") or [])
        return any(results) if str(where.get("operand") or "AND").upper() == "OR" else all(results)

    def _filter(self, spec: dict[str, Any]) -> bool:
        field = str(spec.get("field", "")).upper()
        value = spec.get("value")
        try:
            actual = _field_value(self, field, value)
        except GitSyncError as exc:
            log.warning("a preconditions filter on %s cannot be evaluated, so it does not hold: %s", field, exc)
            return False
        return _compare(str(spec.get("type", "")).upper(), actual, value, spec.get("values") or [])


def _field_value(event: FlowEvent, field: str, value: Any) -> Any:
    if field == "FLOW_ID":
        return event.get("flowId")
    if field == "NAMESPACE":
        return event.get("namespace")
    if field == "STATE":
        return event.get("state")
    if not event.can_evaluate:
        return "true"
    rendered = event.evaluate(str(value or ""))
    return None if rendered is None else rendered


def _compare(kind: str, actual: Any, value: Any, values: list[Any]) -> bool:
    text = None if actual is None else str(actual).lower() if isinstance(actual, bool) else str(actual)
    if kind == "IS_TRUE":
        return truthy(actual)
    if kind == "IS_FALSE":
        return not truthy(actual)
    if kind == "IS_NULL":
        return actual is None
    if kind == "IS_NOT_NULL":
        return actual is not None
    if kind == "IN":
        return text in [str(v) for v in values]
    if kind == "NOT_IN":
        return text not in [str(v) for v in values]
    if kind == "EQUAL_TO":
        return text == str(value)
    if kind == "NOT_EQUAL_TO":
        return text != str(value)
    if text is None or value is None:
        return False
    if kind == "STARTS_WITH":
        return text.startswith(str(value))
    if kind == "ENDS_WITH":
        return text.endswith(str(value))
    if kind == "CONTAINS":
        return str(value) in text
    if kind == "REGEX":
        try:
            return re.fullmatch(str(value), text) is not None
        except re.error as exc:
            log.warning("a preconditions REGEX filter %r is not a regular expression: %s", value, exc)
            return False
    return False


def _upstream_matches(entry: dict[str, Any], event: Mapping[str, Any]) -> bool:
    if entry.get("namespace") and entry["namespace"] != event.get("namespace"):
        return False
    if entry.get("flowId") and entry["flowId"] != event.get("flowId"):
        return False
    states = entry.get("states")
    if states and event.get("state") not in states:
        return False
    labels = event.get("labels") or {}
    return all(str(labels.get(k)) == str(v) for k, v in (entry.get("labels") or {}).items())


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _name(condition: Any) -> str:
    if isinstance(condition, dict):
        return str(condition.get("type", "?")).rsplit(".", 1)[-1]
    return repr(condition)
