"""Kestra's flow control on real flows (issue 11): retries, Switch, allowFailure/allowWarning and SLAs.

Each flow is committed to a real git repository, synced into SQLite and run by the RunManager (tests/runtime.py);
the states, attempt counts, outputs and errors asserted are those Kestra's documentation and its own tests give.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import installed
import pytest
from runtime import Runtime

from gitsync.sync.apply import sync_source


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


# -- Switch -----------------------------------------------------------------------------------------------------------

SWITCH = """
id: route
namespace: acme
inputs:
  - id: region
    type: STRING
tasks:
  - id: route
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.region }}"
    cases:
      eu:
        - id: eu
          type: io.kestra.plugin.core.log.Log
          message: to Frankfurt
"""


def test_a_switch_with_no_matching_case_and_no_defaults_fails(rt: Runtime) -> None:
    rt.deploy({"route.yaml": SWITCH})
    execution = rt.run("acme.route", region="us")
    route = next(r for r in execution["task_runs"] if r["task_id"] == "route")
    assert (execution["state"], route["state"]) == ("FAILED", "FAILED")
    assert route["outputs"] == {"value": "us", "defaults": True}
    assert execution["error"] == (
        "task 'route': no case matches the value 'us' and the Switch has no defaults, so it has no task to run; "
        "add a case 'us' or a defaults list"
    )


def test_a_switch_says_whether_it_took_the_defaults(rt: Runtime) -> None:
    with_defaults = (
        SWITCH.replace("id: route\nnamespace", "id: routed\nnamespace")
        + """
    defaults:
      - id: elsewhere
        type: io.kestra.plugin.core.log.Log
        message: to Virginia
"""
    )
    rt.deploy({"route.yaml": SWITCH, "routed.yaml": with_defaults})
    matched = rt.run("acme.route", region="eu")
    defaulted = rt.run("acme.routed", region="us")
    assert (matched["state"], defaulted["state"]) == ("SUCCESS", "SUCCESS")
    assert [r["outputs"] for r in matched["task_runs"] if r["task_id"] == "route"] == [
        {"value": "eu", "defaults": False}
    ]
    assert [r["outputs"] for r in defaulted["task_runs"] if r["task_id"] == "route"] == [
        {"value": "us", "defaults": True}
    ]
    assert rt.states(defaulted)["elsewhere"] == "SUCCESS"


# -- allowFailure, AllowFailure and allowWarning ------------------------------------------------------------------


def _attempts(execution: dict[str, object], task_id: str) -> list[tuple[int, str]]:
    runs = execution["task_runs"]
    assert isinstance(runs, list)
    return [(r["attempt"], r["state"]) for r in runs if r["task_id"] == task_id]


def test_an_allowed_failure_is_recorded_as_a_warning_after_its_last_attempt(rt: Runtime) -> None:
    rt.deploy(
        {
            "tolerant.yaml": """
            id: tolerant
            namespace: acme
            tasks:
              - id: optional
                type: io.kestra.plugin.core.execution.Fail
                errorMessage: the mirror is down
                allowFailure: true
                retry:
                  type: constant
                  interval: PT0S
                  maxAttempts: 3
              - id: after
                type: io.kestra.plugin.core.log.Log
                message: carried on
        """
        }
    )
    execution = rt.run("acme.tolerant")
    assert _attempts(execution, "optional") == [(1, "RETRIED"), (2, "RETRIED"), (3, "WARNING")]
    assert (execution["state"], execution["error"], rt.states(execution)["after"]) == ("WARNING", None, "SUCCESS")


def test_allow_failure_and_allow_warning_on_flowables_set_the_flowables_own_state(rt: Runtime) -> None:
    rt.deploy(
        {
            "wrapped.yaml": """
            id: wrapped
            namespace: acme
            tasks:
              - id: guard
                type: io.kestra.plugin.core.flow.AllowFailure
                tasks:
                  - id: broken
                    type: io.kestra.plugin.core.execution.Fail
                errors:
                  - id: noticed
                    type: io.kestra.plugin.core.log.Log
                    message: broken failed
              - id: lenient
                type: io.kestra.plugin.core.flow.Sequential
                allowFailure: true
                tasks:
                  - id: also_broken
                    type: io.kestra.plugin.core.execution.Fail
              - id: silent
                type: io.kestra.plugin.core.flow.Sequential
                allowFailure: true
                allowWarning: true
                tasks:
                  - id: broken_too
                    type: io.kestra.plugin.core.execution.Fail
        """
        }
    )
    execution = rt.run("acme.wrapped")
    states = rt.states(execution)
    assert (states["guard"], states["broken"], states["noticed"]) == ("WARNING", "FAILED", "SUCCESS")
    assert (states["lenient"], states["also_broken"]) == ("WARNING", "FAILED")
    assert (states["silent"], states["broken_too"]) == ("SUCCESS", "FAILED")
    assert (execution["state"], execution["error"]) == ("WARNING", None)


def test_allow_warning_records_a_task_that_ended_in_a_warning_as_success(rt: Runtime) -> None:
    rt.deploy(
        {
            "calm.yaml": """
            id: calm
            namespace: acme
            tasks:
              - id: flaky
                type: io.kestra.plugin.core.execution.Fail
                condition: "{{ taskrun.attemptsCount == 0 }}"
                allowWarning: true
                retry:
                  type: constant
                  interval: PT0S
                  maxAttempts: 2
                  warningOnRetry: true
        """
        }
    )
    execution = rt.run("acme.calm")
    assert _attempts(execution, "flaky") == [(1, "RETRIED"), (2, "SUCCESS")]
    assert execution["state"] == "SUCCESS"


def test_the_error_names_the_task_that_failed_not_an_allowed_one_beside_it(rt: Runtime) -> None:
    rt.deploy(
        {
            "mixed.yaml": """
            id: mixed
            namespace: acme
            tasks:
              - id: both
                type: io.kestra.plugin.core.flow.Parallel
                tasks:
                  - id: optional
                    type: io.kestra.plugin.core.flow.AllowFailure
                    tasks:
                      - id: mirror
                        type: io.kestra.plugin.core.execution.Fail
                        errorMessage: the mirror is down
                  - id: required
                    type: io.kestra.plugin.core.flow.Sequential
                    tasks:
                      - id: load
                        type: io.kestra.plugin.core.execution.Fail
                        errorMessage: the warehouse refused the load
        """
        }
    )
    execution = rt.run("acme.mixed")
    assert (execution["state"], rt.states(execution)["optional"]) == ("FAILED", "WARNING")
    assert execution["error"] == "task 'load': the warehouse refused the load"


# -- retries ----------------------------------------------------------------------------------------------------------


def _executions(rt: Runtime, flow_uid: str) -> list[tuple[int, str]]:
    """(attempt, state) of every execution of the flow, once the retries this process started have ended."""
    assert rt.runs.wait_all(timeout=60)
    rows = rt.store.query("SELECT attempt, state FROM executions WHERE flow_uid = ? ORDER BY attempt", (flow_uid,))
    return [(r["attempt"], r["state"]) for r in rows]


@pytest.mark.parametrize("behavior", ["behavior: RETRY_FAILED_TASK", ""], ids=["explicit", "default"])
def test_a_flow_retry_that_retries_the_failed_task_retries_it_in_the_same_execution(rt: Runtime, behavior: str) -> None:
    rt.deploy(
        {
            "load.yaml": f"""
            id: load
            namespace: acme
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 4
              {behavior}
            tasks:
              - id: own
                type: io.kestra.plugin.core.execution.Fail
                condition: "{{{{ taskrun.attemptsCount < 1 }}}}"
                retry:
                  type: constant
                  interval: PT0S
                  maxAttempts: 2
              - id: load
                type: io.kestra.plugin.core.execution.Fail
                errorMessage: the warehouse refused the load
        """
        }
    )
    execution = rt.run("acme.load")
    assert _attempts(execution, "own") == [(1, "RETRIED"), (2, "SUCCESS")]  # its own retry, not the flow's
    assert _attempts(execution, "load") == [(1, "RETRIED"), (2, "RETRIED"), (3, "RETRIED"), (4, "FAILED")]
    assert (execution["state"], execution["error"]) == ("FAILED", "task 'load': the warehouse refused the load")
    assert _executions(rt, "acme.load") == [(1, "FAILED")]


def test_a_task_retry_that_creates_a_new_execution_retries_the_whole_flow(rt: Runtime) -> None:
    rt.deploy(
        {
            "load.yaml": """
            id: load
            namespace: acme
            tasks:
              - id: extract
                type: io.kestra.plugin.core.log.Log
                message: extracted
              - id: load
                type: io.kestra.plugin.core.execution.Fail
                errorMessage: the warehouse refused the load
                retry:
                  type: constant
                  behavior: CREATE_NEW_EXECUTION
                  interval: PT0S
                  maxAttempts: 3
        """
        }
    )
    first = rt.run("acme.load")
    assert _attempts(first, "load") == [(1, "FAILED")]  # not retried inside the execution
    assert _executions(rt, "acme.load") == [(1, "RETRIED"), (2, "RETRIED"), (3, "FAILED")]
    rows = rt.store.query("SELECT id FROM executions WHERE flow_uid = 'acme.load' ORDER BY attempt")
    last = rt.execution(rows[-1]["id"])
    assert rt.states(last) == {"extract": "SUCCESS", "load": "FAILED"}  # every task ran again
    assert last["error"] == "task 'load': the warehouse refused the load"


SLOW_FAIL = """
  - id: slow
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1.2S
  - id: load
    type: io.kestra.plugin.core.execution.Fail
"""
NEW_EXECUTION_RETRY = """
  type: constant
  behavior: CREATE_NEW_EXECUTION
  interval: PT0.1S
  maxAttempts: 3
  maxDuration: {budget}
"""


@pytest.mark.parametrize("where", ["flow", "task"])
def test_max_duration_bounds_retries_as_new_executions_from_the_first_ones_start(rt: Runtime, where: str) -> None:
    """Kestra's retry-new-execution-*-duration: no new execution starts after the first one's creation plus
    maxDuration. Here the first run alone takes longer than the 1 s budget, so it is not retried."""

    def flow(flow_id: str, budget: str) -> str:
        retry = NEW_EXECUTION_RETRY.format(budget=budget)
        if where == "flow":
            return f"id: {flow_id}\nnamespace: acme\nretry:{retry}tasks:{SLOW_FAIL}"
        indented = "".join(f"    {line}\n" for line in retry.strip("\n").splitlines())
        return f"id: {flow_id}\nnamespace: acme\ntasks:{SLOW_FAIL}    retry:\n{indented}"

    rt.deploy({"tight.yaml": flow("tight", "PT1S"), "roomy.yaml": flow("roomy", "PT1H")})
    rt.run("acme.tight")
    rt.run("acme.roomy")
    assert _executions(rt, "acme.tight") == [(1, "FAILED")]
    assert _executions(rt, "acme.roomy") == [(1, "RETRIED"), (2, "RETRIED"), (3, "FAILED")]


def test_a_retry_on_a_flowable_retries_its_failing_descendants(rt: Runtime) -> None:
    rt.deploy(
        {
            "nested.yaml": """
            id: nested
            namespace: acme
            tasks:
              - id: outer
                type: io.kestra.plugin.core.flow.Sequential
                retry:
                  type: constant
                  interval: PT0S
                  maxAttempts: 3
                tasks:
                  - id: inner
                    type: io.kestra.plugin.core.flow.Sequential
                    tasks:
                      - id: child
                        type: io.kestra.plugin.core.execution.Fail
        """,
            "fanout.yaml": """
            id: fanout
            namespace: acme
            tasks:
              - id: both
                type: io.kestra.plugin.core.flow.Parallel
                retry:
                  type: constant
                  interval: PT0S
                  maxAttempts: 2
                tasks:
                  - id: left
                    type: io.kestra.plugin.core.execution.Fail
                  - id: right
                    type: io.kestra.plugin.core.execution.Fail
        """,
        }
    )
    nested = rt.run("acme.nested")
    assert _attempts(nested, "child") == [(1, "RETRIED"), (2, "RETRIED"), (3, "FAILED")]
    assert (_attempts(nested, "outer"), nested["state"]) == ([(1, "FAILED")], "FAILED")
    fanout = rt.run("acme.fanout")
    assert _attempts(fanout, "left") == _attempts(fanout, "right") == [(1, "RETRIED"), (2, "FAILED")]
    assert fanout["state"] == "FAILED"


# -- SLA --------------------------------------------------------------------------------------------------------------


def _sla_flow(flow_id: str, sla: str, tasks: str) -> str:
    return f"id: {flow_id}\nnamespace: acme\nsla:{sla}tasks:{tasks}"


LONG_SLEEP = """
  - id: crunch
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
  - id: publish
    type: io.kestra.plugin.core.log.Log
    message: published
"""


@pytest.mark.parametrize(("behavior", "ends"), [("FAIL", "FAILED"), ("CANCEL", "CANCELLED")])
def test_a_max_duration_sla_ends_an_execution_that_runs_too_long(rt: Runtime, behavior: str, ends: str) -> None:
    sla = f"""
  - id: nightly-window
    type: MAX_DURATION
    duration: PT0.5S
    behavior: {behavior}
    labels:
      sla: missed
"""
    rt.deploy({"crunch.yaml": _sla_flow("crunch", sla, LONG_SLEEP)})
    execution = rt.run("acme.crunch")
    assert execution["state"] == ends
    assert rt.states(execution) == {"crunch": "KILLED"}  # stopped at once; the rest never ran
    assert execution["labels"]["sla"] == "missed"
    assert execution["error"] == (
        "SLA 'nightly-window' violated: the execution ran longer than its maximum duration of PT0.5S, "
        f"so the execution ends {ends} (behavior: {behavior})"
    )
    assert (
        "SLA 'nightly-window' violated: the execution ran longer than its maximum duration of PT0.5S"
        in (execution["logs"])
    )


def test_a_max_duration_sla_with_behavior_none_only_labels_and_logs(rt: Runtime) -> None:
    sla = """
  - id: slow
    type: MAX_DURATION
    duration: PT0.2S
    behavior: NONE
    labels:
      sla: late
  - id: generous
    type: MAX_DURATION
    duration: PT1H
"""
    tasks = """
  - id: crunch
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
"""
    rt.deploy({"late.yaml": _sla_flow("late", sla, tasks)})
    execution = rt.run("acme.late")
    assert (execution["state"], execution["error"], execution["labels"]["sla"]) == ("SUCCESS", None, "late")
    assert [line for line in execution["logs"] if line.startswith("SLA")] == [
        "SLA 'slow' violated: the execution ran longer than its maximum duration of PT0.2S"
    ]


ASSERTED = """
id: orders
namespace: acme
inputs:
  - id: mode
    type: STRING
    defaults: normal
sla:
  - id: not-cancelled
    type: EXECUTION_ASSERTION
    behavior: CANCEL
    assert: "{{ inputs.mode != 'cancel' }}"
  - id: flagged
    type: EXECUTION_ASSERTION
    behavior: NONE
    assert: "{{ inputs.mode != 'flag' }}"
    labels:
      review: needed
  - id: small-batch
    type: EXECUTION_ASSERTION
    behavior: FAIL
    assert: "{{ (outputs.count.value ?? '0') != 'too many' }}"
tasks:
  - id: count
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.mode == 'big' ? 'too many' : 'few' }}"
  - id: load
    type: io.kestra.plugin.core.log.Log
    message: loaded
"""


def user_labels(execution: dict[str, Any]) -> dict[str, str]:
    """The labels a flow or an SLA set (gitsync sets `system.*` on every execution)."""
    return {k: v for k, v in execution["labels"].items() if not k.startswith("system.")}


def test_an_execution_assertion_sla_is_checked_as_the_execution_changes(rt: Runtime) -> None:
    rt.deploy({"orders.yaml": ASSERTED})
    normal = rt.run("acme.orders")
    assert (normal["state"], rt.states(normal), user_labels(normal)) == (
        "SUCCESS",
        {"count": "SUCCESS", "load": "SUCCESS"},
        {},
    )
    cancelled = rt.run("acme.orders", mode="cancel")
    assert (cancelled["state"], rt.states(cancelled)) == ("CANCELLED", {})  # violated before any task started
    assert cancelled["error"] == (
        "SLA 'not-cancelled' violated: its assertion {{ inputs.mode != 'cancel' }} is false, "
        "so the execution ends CANCELLED (behavior: CANCEL)"
    )
    flagged = rt.run("acme.orders", mode="flag")
    assert (flagged["state"], user_labels(flagged)) == ("SUCCESS", {"review": "needed"})
    big = rt.run("acme.orders", mode="big")
    assert (big["state"], rt.states(big)) == ("FAILED", {"count": "SUCCESS"})  # failed once `count` said so
    assert big["error"] == (
        "SLA 'small-batch' violated: its assertion {{ (outputs.count.value ?? '0') != 'too many' }} is false, "
        "so the execution ends FAILED (behavior: FAIL)"
    )


def test_an_sla_without_what_its_type_needs_is_refused(rt: Runtime) -> None:
    rt.repo.commit({"flows/vague.yaml": _sla_flow("vague", "\n  - id: window\n    type: MAX_DURATION\n", LONG_SLEEP)})
    result = sync_source(rt.store, rt.source, rt.data_dir, installed.registry())
    assert result.outcome != "applied"
    assert any("a MAX_DURATION SLA needs a duration (e.g. duration: PT1H)" in str(e) for e in result.errors)


def test_a_subflow_task_is_retried_like_a_runnable(rt: Runtime) -> None:
    rt.deploy(
        {
            "child.yaml": """
            id: child
            namespace: acme
            tasks:
              - id: refuse
                type: io.kestra.plugin.core.execution.Fail
                errorMessage: the child refuses
        """,
            "parent.yaml": """
            id: parent
            namespace: acme
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 3
            tasks:
              - id: call
                type: io.kestra.plugin.core.flow.Subflow
                namespace: acme
                flowId: child
        """,
        }
    )
    parent = rt.run("acme.parent")
    assert _attempts(parent, "call") == [(1, "RETRIED"), (2, "RETRIED"), (3, "FAILED")]
    assert parent["state"] == "FAILED"
    assert [state for _, state in _executions(rt, "acme.child")] == ["FAILED", "FAILED", "FAILED"]
