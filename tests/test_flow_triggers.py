"""Flow-trigger matching: each condition class judges the upstream execution's end (`Condition.matches`)."""

from __future__ import annotations

from typing import Any

import installed
import pytest

from gitsync.schedule.flow_triggers import matches

C = "io.kestra.plugin.core.condition."
EVENT = {
    "executionId": "e1",
    "namespace": "acme.team",
    "flowId": "up",
    "flowRevision": 1,
    "state": "FAILED",
    "outputs": {"n": 3},
    "labels": {"env": "prod"},
}

CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("status-in", [{"type": C + "ExecutionStatus", "in": ["FAILED"]}], True),
    ("status-not-in", [{"type": C + "ExecutionStatus", "notIn": ["FAILED"]}], False),
    (
        "legacy-alias",
        [{"type": "io.kestra.core.models.conditions.types.ExecutionStatusCondition", "in": ["SUCCESS"]}],
        False,
    ),
    ("flow", [{"type": C + "ExecutionFlow", "namespace": "acme.team", "flowId": "up"}], True),
    ("flow-other", [{"type": C + "ExecutionFlow", "namespace": "acme.team", "flowId": "other"}], False),
    ("namespace-prefix", [{"type": C + "ExecutionNamespace", "namespace": "acme", "comparison": "PREFIX"}], True),
    ("namespace-equals", [{"type": C + "ExecutionNamespace", "namespace": "acme"}], False),
    ("labels", [{"type": C + "ExecutionLabels", "labels": {"env": "prod"}}], True),
    ("labels-other", [{"type": C + "ExecutionLabels", "labels": {"env": "dev"}}], False),
    ("expression", [{"type": C + "Expression", "expression": "{{ trigger.outputs.n > 2 }}"}], True),
    ("expression-false", [{"type": C + "Expression", "expression": "{{ trigger.outputs.n > 5 }}"}], False),
    ("not", [{"type": C + "Not", "conditions": [{"type": C + "ExecutionStatus", "in": ["SUCCESS"]}]}], True),
    (
        "or",
        [
            {
                "type": C + "Or",
                "conditions": [
                    {"type": C + "ExecutionStatus", "in": ["SUCCESS"]},
                    {"type": C + "ExecutionLabels", "labels": {"env": "prod"}},
                ],
            }
        ],
        True,
    ),
    ("schedule-only", [{"type": C + "Weekend"}], True),
]


def _evaluate(expression: str, variables: dict[str, Any]) -> Any:
    from runner.expressions.renderer import Renderer

    return Renderer().evaluate(expression, variables)


@pytest.mark.parametrize(("conditions", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_conditions_judge_the_event(conditions: list[dict[str, Any]], expected: bool) -> None:
    spec = {"conditions": conditions}
    assert matches(spec, EVENT, installed.registry(), _evaluate) is expected


def test_states_and_preconditions() -> None:
    registry = installed.registry()
    assert not matches({"states": ["SUCCESS"]}, EVENT, registry)
    assert matches({"preconditions": {"flows": [{"namespace": "acme.team", "flowId": "up"}]}}, EVENT, registry)
    assert not matches({"preconditions": {"flows": [{"flowId": "x"}]}}, EVENT, registry)
