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
    with_defaults = SWITCH.replace("id: route\nnamespace", "id: routed\nnamespace") + """
    defaults:
      - id: elsewhere
        type: io.kestra.plugin.core.log.Log
        message: to Virginia
"""
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
