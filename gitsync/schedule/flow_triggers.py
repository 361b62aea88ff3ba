"""Does an execution's end fire a Flow trigger? (KESTRA_SPEC §9.2) Pure: the event and the trigger spec in.

`event` holds the upstream execution: executionId, namespace, flowId, flowRevision, state, outputs, labels.
Conditions are ANDed; `Not` and `Or` nest. `preconditions.flows` is read as "the event matches one of the
listed flows (in the listed states)"; gathering several upstream executions inside a time window is not
implemented yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.registry import default_registry

TERMINAL = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED")
Evaluate = Callable[[str, dict[str, Any]], Any]


def matches(spec: dict[str, Any], event: dict[str, Any], evaluate: Evaluate | None = None) -> bool:
    states = spec.get("states") or TERMINAL
    if event.get("state") not in states:
        return False
    if not all(_condition(c, event, evaluate) for c in spec.get("conditions") or []):
        return False
    preconditions = spec.get("preconditions") or {}
    flows = preconditions.get("flows") if isinstance(preconditions, dict) else None
    return not flows or any(_flow_matches(f, event) for f in flows)


def _flow_matches(entry: dict[str, Any], event: dict[str, Any]) -> bool:
    if entry.get("namespace") and entry["namespace"] != event.get("namespace"):
        return False
    if entry.get("flowId") and entry["flowId"] != event.get("flowId"):
        return False
    states = entry.get("states")
    return not states or event.get("state") in states


def _name(condition: dict[str, Any]) -> str:
    type_name = str(condition.get("type", ""))
    canonical = default_registry().canonical(type_name) or type_name
    return canonical.rsplit(".", 1)[-1]


def _condition(condition: dict[str, Any], event: dict[str, Any], evaluate: Evaluate | None) -> bool:
    name = _name(condition)
    if name == "ExecutionStatus":
        inside = condition.get("in")
        outside = condition.get("notIn")
        return (not inside or event.get("state") in inside) and (not outside or event.get("state") not in outside)
    if name == "ExecutionFlow":
        return condition.get("namespace") == event.get("namespace") and condition.get("flowId") == event.get("flowId")
    if name == "ExecutionNamespace":
        return _namespace(condition, str(event.get("namespace", "")))
    if name == "ExecutionLabels":
        labels = event.get("labels") or {}
        wanted = condition.get("labels") or {}
        return all(str(labels.get(k)) == str(v) for k, v in wanted.items())
    if name in ("Expression", "ExecutionOutputs") and evaluate is not None:
        return bool(evaluate(str(condition.get("expression", "")), {"trigger": event}))
    if name == "Not":
        return not any(_condition(c, event, evaluate) for c in condition.get("conditions") or [])
    if name == "Or":
        return any(_condition(c, event, evaluate) for c in condition.get("conditions") or [])
    return True  # schedule-only conditions (DayWeek, …) do not restrict a Flow trigger


def _namespace(condition: dict[str, Any], namespace: str) -> bool:
    wanted = str(condition.get("namespace", ""))
    comparison = str(condition.get("comparison") or ("PREFIX" if condition.get("prefix") else "EQUALS")).upper()
    if comparison == "PREFIX":
        return namespace.startswith(wanted)
    if comparison == "SUFFIX":
        return namespace.endswith(wanted)
    return namespace == wanted
