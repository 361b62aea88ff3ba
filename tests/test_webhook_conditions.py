"""A Webhook trigger's `conditions` and `when` judge each call (KESTRA_SPEC §9.3): a refused call starts nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime

HOOK = """
id: hook
namespace: acme
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body.event }}"
triggers:
  - id: incoming
    type: io.kestra.plugin.core.trigger.Webhook
    key: hook-key
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.body.event == 'push' }}"
    when: "{{ trigger.headers['x-env'] == 'prod' }}"
"""


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    runtime.deploy({"hook.yaml": HOOK})
    yield runtime
    runtime.close()


def _call(rt: Runtime, event: str, env: str) -> str | None:
    return rt.runs.webhook("acme", "hook", "hook-key", {"body": {"event": event}, "headers": {"x-env": env}})


def test_a_call_its_conditions_and_when_accept_starts_the_flow(rt: Runtime) -> None:
    execution_id = _call(rt, "push", "prod")
    assert execution_id
    rt.runs.wait(execution_id, timeout=30)
    assert rt.execution(execution_id)["state"] == "SUCCESS"


@pytest.mark.parametrize(("event", "env"), [("tag", "prod"), ("push", "dev")])
def test_a_call_they_refuse_starts_nothing(rt: Runtime, event: str, env: str) -> None:
    assert _call(rt, event, env) == ""  # the HTTP route answers 204, as Kestra does
    assert rt.store.query("SELECT id FROM executions") == []


def test_a_condition_that_cannot_judge_the_call_starts_nothing(rt: Runtime) -> None:
    assert rt.runs.webhook("acme", "hook", "hook-key", {"body": "not a map", "headers": {"x-env": "prod"}}) == ""
    assert rt.store.query("SELECT id FROM executions") == []
