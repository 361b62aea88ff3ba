"""Flow triggers: each condition class judges the upstream execution's end (`Condition.matches`), windows of
preconditions / MultipleCondition gather several upstream ends in SQLite, and mutual triggers stop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import installed
import pytest
from runtime import Runtime

from gitsync.schedule.flow_triggers import judge, matches
from gitsync.state import trigger_windows
from gitsync.state.database import Store, loads

C = "io.kestra.plugin.core.condition."
EVENT = {
    "executionId": "e1",
    "namespace": "acme.team",
    "flowId": "up",
    "flowRevision": 1,
    "state": "FAILED",
    "outputs": {"n": 3},
    "labels": {"env": "prod"},
    "retriedAttemptStates": ["FAILED", "SUCCESS"],
    "listening": {"namespace": "acme.team", "flowId": "down"},
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
    # a date condition reads {{ trigger.date }}, which an upstream end has not: it cannot judge, so it does not hold
    ("schedule-only", [{"type": C + "Weekend"}], False),
    ("schedule-date-given", [{"type": C + "Weekend", "date": "2024-01-06"}], True),
    # FlowCondition and FlowNamespaceCondition name the flow that holds the trigger, not the upstream one
    ("flow-condition-listener", [{"type": C + "FlowCondition", "namespace": "acme.team", "flowId": "down"}], True),
    ("flow-condition-upstream", [{"type": C + "FlowCondition", "namespace": "acme.team", "flowId": "up"}], False),
    ("flow-namespace-prefix", [{"type": C + "FlowNamespaceCondition", "namespace": "acme", "prefix": True}], True),
    ("flow-namespace-equals", [{"type": C + "FlowNamespaceCondition", "namespace": "acme"}], False),
    ("retry-attempt-failed", [{"type": C + "HasRetryAttempt", "in": ["FAILED"]}], True),
    ("retry-attempt-killed", [{"type": C + "HasRetryAttempt", "in": ["KILLED"]}], False),
    ("retry-attempt-not-in", [{"type": C + "HasRetryAttempt", "notIn": ["FAILED", "SUCCESS"]}], False),
    (
        "multiple-one-event-cannot-meet-two-flows",
        [
            {
                "type": C + "MultipleCondition",
                "id": "both",
                "conditions": {
                    "a": {"type": C + "ExecutionFlow", "namespace": "acme.team", "flowId": "up"},
                    "b": {"type": C + "ExecutionFlow", "namespace": "acme.team", "flowId": "other"},
                },
            }
        ],
        False,
    ),
    (
        "multiple-met-by-one-event",
        [
            {
                "type": C + "MultipleCondition",
                "id": "both",
                "conditions": {
                    "failed": {"type": C + "ExecutionStatus", "in": ["FAILED"]},
                    "up": {"type": C + "ExecutionFlow", "namespace": "acme.team", "flowId": "up"},
                },
            }
        ],
        True,
    ),
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


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{{ labels.env == 'prod' }}", True),  # Kestra 2.0's names: the upstream's fields at the top level
        ("{{ state == 'SUCCESS' }}", False),
        ("{{ trigger.outputs.n > 2 and hasRetryAttempt }}", True),
        ("{{ namespace is startingWith('other') }}", False),
        ("{{ no_such_thing }}", False),  # cannot be evaluated: the trigger does not fire (and says why in the log)
    ],
)
def test_when_on_a_flow_trigger(when: str, expected: bool) -> None:
    assert matches({"when": when}, EVENT, installed.registry(), _evaluate) is expected


WHERE = {
    "id": "gate",
    "flows": [{"namespace": "acme", "flowId": "a", "states": ["SUCCESS"]}],
    "where": [
        {
            "id": "b",
            "operand": "AND",
            "filters": [
                {"field": "NAMESPACE", "type": "STARTS_WITH", "value": "ac"},
                {"field": "FLOW_ID", "type": "IN", "values": ["b", "c"]},
                {"field": "EXPRESSION", "type": "IS_TRUE", "value": "{{ labels.team == 'data' }}"},
            ],
        }
    ],
}


def _end(flow_id: str, state: str = "SUCCESS", **labels: str) -> dict[str, Any]:
    return {"executionId": f"e-{flow_id}", "namespace": "acme", "flowId": flow_id, "state": state, "labels": labels}


def _settle(store: Store, spec: dict[str, Any], event: dict[str, Any], at: datetime) -> bool:
    """What fire_flow_triggers does with one upstream end at `at`: judge it, then settle its windows in SQLite."""
    judged = judge(spec, event, installed.registry(), _evaluate)
    if not judged.passes:
        return False
    complete = trigger_windows.settle(store, "acme.down/t", judged.windows, at, event["executionId"])
    return complete and judged.contributes


T = datetime(2024, 3, 4, tzinfo=UTC)


def test_preconditions_fire_once_both_upstreams_ended_in_the_window_even_across_a_restart(tmp_path: Path) -> None:
    spec = {"preconditions": WHERE}
    store = Store(tmp_path / "state.db")
    assert not _settle(store, spec, _end("a"), T + timedelta(hours=10))
    assert not _settle(store, spec, _end("b", team="ops"), T + timedelta(hours=11))  # its filter does not hold
    assert not _settle(store, spec, _end("a", "FAILED"), T + timedelta(hours=11))  # a state it does not wait for
    store.close()
    reopened = Store(tmp_path / "state.db")  # a restart: what a's end satisfied is still there
    assert [m["execution_id"] for m in trigger_windows.marks(reopened, "acme.down/t")] == ["e-a"]
    assert _settle(reopened, spec, _end("b", team="data"), T + timedelta(hours=12))
    assert trigger_windows.marks(reopened, "acme.down/t") == []  # resetOnSuccess: the next fire needs both again
    assert not _settle(reopened, spec, _end("b", team="data"), T + timedelta(hours=13))


def test_without_reset_each_later_end_fires_again(tmp_path: Path) -> None:
    spec = {"preconditions": {**WHERE, "resetOnSuccess": False}}
    store = Store(tmp_path / "state.db")
    assert not _settle(store, spec, _end("a"), T + timedelta(hours=1))
    assert _settle(store, spec, _end("b", team="data"), T + timedelta(hours=2))
    assert _settle(store, spec, _end("a"), T + timedelta(hours=3))


@pytest.mark.parametrize(
    ("window", "a_at", "b_at", "fires"),
    [
        # DURATION_WINDOW (the default): one day from midnight UTC
        ({}, "10:00", "23:59", True),
        ({}, "23:59", "+1 00:01", False),  # a's mark was made in yesterday's window
        # fixed windows of 6 hours shifted by 3: 03-09, 09-15, 15-21, 21-03
        ({"window": "PT6H", "windowAdvance": "PT3H"}, "09:00", "14:59", True),
        ({"window": "PT6H", "windowAdvance": "PT3H"}, "08:59", "09:01", False),
        ({"type": "SLIDING_WINDOW", "window": "PT1H"}, "23:30", "+1 00:29", True),  # the last hour, across midnight
        ({"type": "SLIDING_WINDOW", "window": "PT1H"}, "10:00", "11:01", False),
        ({"type": "DAILY_TIME_WINDOW", "startTime": "06:00:00", "endTime": "09:00:00"}, "06:10", "08:50", True),
        ({"type": "DAILY_TIME_WINDOW", "startTime": "06:00:00", "endTime": "09:00:00"}, "05:50", "08:50", False),
        ({"type": "DAILY_TIME_DEADLINE", "deadline": "09:00:00"}, "01:00", "08:59", True),
        ({"type": "DAILY_TIME_DEADLINE", "deadline": "09:00:00"}, "01:00", "09:01", False),  # past the deadline
        ({"type": "DAILY_TIME_DEADLINE", "deadline": "09:00:00+02:00"}, "01:00", "07:01", False),  # 07:00 UTC
    ],
)
def test_time_windows(tmp_path: Path, window: dict[str, str], a_at: str, b_at: str, fires: bool) -> None:
    spec = {
        "preconditions": {
            "id": "pair",
            "timeWindow": window,
            "flows": [{"namespace": "acme", "flowId": f} for f in "ab"],
        }
    }
    store = Store(tmp_path / "state.db")
    assert not _settle(store, spec, _end("a"), _at(a_at))
    assert _settle(store, spec, _end("b"), _at(b_at)) is fires


def _at(text: str) -> datetime:
    day, _, clock = text.rpartition(" ")
    hours, minutes = clock.split(":")
    return T + timedelta(days=int(day or 0), hours=int(hours), minutes=int(minutes))


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


def _flow(flow_id: str, triggers: str = "") -> str:
    text = f"""
    id: {flow_id}
    namespace: acme
    tasks:
      - id: hello
        type: io.kestra.plugin.core.log.Log
        message: "{flow_id} after {{{{ trigger.flowId ?? 'nobody' }}}}"
    """
    return text.rstrip(" ") + ("    triggers:" + triggers if triggers else "")


def _executions(rt: Runtime, flow_id: str) -> list[dict[str, Any]]:
    rows = rt.store.query(
        "SELECT state, trigger_vars FROM executions WHERE flow_uid = ? ORDER BY created_at", (f"acme.{flow_id}",)
    )
    return [{"state": r["state"], "after": (loads(r["trigger_vars"]) or {}).get("flowId")} for r in rows]


def test_a_flow_waiting_for_two_upstream_flows_starts_once_both_succeeded(tmp_path: Path) -> None:
    waits = """
      - id: both
        type: io.kestra.plugin.core.trigger.Flow
        preconditions:
          id: upstreams
          timeWindow:
            type: SLIDING_WINDOW
            window: P1D
          flows:
            - namespace: acme
              flowId: extract
              states: [SUCCESS]
            - namespace: acme
              flowId: load
              states: [SUCCESS]
    """
    first = Runtime(tmp_path)
    first.deploy({"extract.yaml": _flow("extract"), "load.yaml": _flow("load"), "report.yaml": _flow("report", waits)})
    first.run("acme.extract")
    assert first.runs.wait_all(timeout=60)
    assert _executions(first, "report") == []  # load has not run yet
    first.close()
    again = Runtime(tmp_path)  # a restart between the two upstream ends
    try:
        again.run("acme.load")
        assert again.runs.wait_all(timeout=60)
        assert _executions(again, "report") == [{"state": "SUCCESS", "after": "load"}]
        again.run("acme.load")  # the window was reset: load alone does not start it again
        assert again.runs.wait_all(timeout=60)
        assert len(_executions(again, "report")) == 1
    finally:
        again.close()


def test_two_flows_triggering_each_other_stop_when_their_conditions_stop_matching(rt: Runtime) -> None:
    # ping starts after pong AND after audit (legacy MultipleCondition); pong starts after every ping. Before the
    # window was kept, the MultipleCondition held for any end and ping and pong started each other forever.
    ping_waits = """
      - id: after_pong_and_audit
        type: io.kestra.core.models.triggers.types.Flow
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [SUCCESS]
          - id: both
            type: io.kestra.core.models.conditions.types.MultipleCondition
            timeWindow:
              type: SLIDING_WINDOW
              window: P1D
            conditions:
              pong:
                type: io.kestra.core.models.conditions.types.ExecutionFlowCondition
                namespace: acme
                flowId: pong
              audit:
                type: io.kestra.plugin.core.condition.ExecutionFlow
                namespace: acme
                flowId: audit
    """
    pong_waits = """
      - id: after_ping
        type: io.kestra.plugin.core.trigger.Flow
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: acme
            flowId: ping
    """
    rt.deploy(
        {"ping.yaml": _flow("ping", ping_waits), "pong.yaml": _flow("pong", pong_waits), "audit.yaml": _flow("audit")}
    )
    rt.run("acme.ping")
    assert rt.runs.wait_all(timeout=60)
    assert _executions(rt, "pong") == [{"state": "SUCCESS", "after": "ping"}]
    assert _executions(rt, "ping") == [{"state": "SUCCESS", "after": None}]  # pong's end alone does not start it
    rt.run("acme.audit")  # now both have ended: ping starts, then pong, and ping waits for audit again
    assert rt.runs.wait_all(timeout=60)
    assert [e["after"] for e in _executions(rt, "ping")] == [None, "audit"]
    assert [e["after"] for e in _executions(rt, "pong")] == ["ping", "ping"]


def test_a_flow_trigger_with_a_retry_condition_fires_only_after_a_retried_task(rt: Runtime) -> None:
    retried = """
      - id: after_retry
        type: io.kestra.plugin.core.trigger.Flow
        conditions:
          - type: io.kestra.plugin.core.condition.HasRetryAttempt
            in: [FAILED]
    """
    flaky = f"""
    id: flaky
    namespace: acme
    tasks:
      - id: once
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        retry:
          type: constant
          interval: PT0S
          maxAttempts: 2
        commands:
          - test -f {rt.tmp}/marker || {{ touch {rt.tmp}/marker; exit 1; }}
    """
    rt.deploy({"steady.yaml": _flow("steady"), "flaky.yaml": flaky, "alert.yaml": _flow("alert", retried)})
    rt.run("acme.steady")
    assert rt.runs.wait_all(timeout=60)
    assert _executions(rt, "alert") == []
    assert rt.run("acme.flaky")["state"] == "SUCCESS"
    assert rt.runs.wait_all(timeout=60)
    assert _executions(rt, "alert") == [{"state": "SUCCESS", "after": "flaky"}]
