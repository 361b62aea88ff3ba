"""Kestra's flow control on real flows (issue 11): retries, Switch, allowFailure/allowWarning and SLAs.

Each flow is committed to a real git repository, synced into SQLite and run by the RunManager (tests/runtime.py);
the states, attempt counts, outputs and errors asserted are those Kestra's documentation and its own tests give.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime


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
