"""Does an execution's end fire a Flow trigger? (KESTRA_SPEC §9.2) Pure: the event and the trigger spec in.

`event` holds the upstream execution: executionId, namespace, flowId, flowRevision, state, outputs, labels.
Conditions are ANDed; each condition class judges the event itself (`Condition.matches`, `Not` and `Or`
nest). `preconditions.flows` is read as "the event matches one of the listed flows (in the listed states)";
gathering several upstream executions inside a time window is not implemented yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from runner.plugin import Condition
from runner.registry import Registry
from runner.states import TERMINAL_STATES

log = logging.getLogger("gitsync.triggers")

TERMINAL = tuple(state.value for state in TERMINAL_STATES)
"""A Flow trigger without `states` fires on any end of the upstream execution."""
Evaluate = Callable[[str, dict[str, Any]], Any]


def matches(
    spec: dict[str, Any], event: dict[str, Any], registry: Registry, evaluate: Evaluate | None = None
) -> bool:
    states = spec.get("states") or TERMINAL
    if event.get("state") not in states:
        return False
    judged = _Event(event, registry, evaluate)
    if not all(judged.holds(c) for c in spec.get("conditions") or []):
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


class _Event:
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
        return self._evaluate(expression, {"trigger": self._data})

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
        return model.matches(self)
