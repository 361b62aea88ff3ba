"""Execution labels as Kestra sets them: the system labels (`system.correlationId`, `system.username`), dotted keys
read in expressions, the Labels task's three forms, and labels in `gitsync executions --format json`."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime, deployed_state, gitsync_cli

PARENT = """
id: parent
namespace: acme
labels:
  team.name: data
  owner: ann
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ labels.system.correlationId }}|{{ labels['team.name'] }}|{{ labels.team.name }}|{{ labels.owner }}"
  - id: child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: acme
    flowId: child
"""

CHILD = """
id: child
namespace: acme
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ labels.system.correlationId }}"
  - id: grandchild
    type: io.kestra.plugin.core.flow.Subflow
    namespace: acme
    flowId: grandchild
"""

GRANDCHILD = """
id: grandchild
namespace: acme
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ labels.system.correlationId }}"
"""


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


def _child_of(rt: Runtime, execution: dict[str, object], task_id: str) -> dict[str, object]:
    run = next(r for r in execution["task_runs"] if r["task_id"] == task_id)  # type: ignore[attr-defined]
    return rt.execution(run["outputs"]["executionId"])


def test_every_execution_carries_its_root_execution_id_as_correlation_id(rt: Runtime) -> None:
    rt.deploy({"parent.yaml": PARENT, "child.yaml": CHILD, "grandchild.yaml": GRANDCHILD})
    parent = rt.run("acme.parent")
    assert parent["state"] == "SUCCESS"
    root = parent["id"]
    assert parent["labels"]["system.correlationId"] == root
    show = next(r for r in parent["task_runs"] if r["task_id"] == "show")
    assert show["outputs"]["value"] == f"{root}|data|data|ann"

    child = _child_of(rt, parent, "child")
    grandchild = _child_of(rt, child, "grandchild")
    for execution in (child, grandchild):
        assert execution["id"] != root
        # the system labels go down to every subflow, the others only with inheritLabels
        assert execution["labels"]["system.correlationId"] == root
        assert "team.name" not in execution["labels"]
        assert [r["outputs"]["value"] for r in execution["task_runs"] if r["task_id"] == "show"] == [root]


def test_the_labels_task_takes_a_map_a_list_a_json_string_and_an_expression(rt: Runtime) -> None:
    rt.deploy(
        {
            "tagged.yaml": """
            id: tagged
            namespace: acme
            variables:
              more: '{"from.expression": "yes"}'
            tasks:
              - id: by_map
                type: io.kestra.plugin.core.execution.Labels
                labels:
                  env: "{{ flow.namespace }}-prod"
              - id: by_list
                type: io.kestra.plugin.core.execution.Labels
                labels:
                  - key: order
                    value: "{{ 40 + 2 }}"
              - id: by_string
                type: io.kestra.plugin.core.execution.Labels
                labels: '{"team.name": "ops"}'
              - id: by_expression
                type: io.kestra.plugin.core.execution.Labels
                labels: "{{ vars.more }}"
              - id: read
                type: io.kestra.plugin.core.debug.Return
                format: "{{ labels.env }} {{ labels.order }} {{ labels.team.name }} {{ labels['from.expression'] }}"
            """
        }
    )
    execution = rt.run("acme.tagged")
    assert execution["state"] == "SUCCESS", execution["error"]
    labels = execution["labels"]
    assert {k: labels[k] for k in ("env", "order", "team.name", "from.expression")} == {
        "env": "acme-prod",
        "order": "42",
        "team.name": "ops",
        "from.expression": "yes",
    }
    read = next(r for r in execution["task_runs"] if r["task_id"] == "read")
    assert read["outputs"]["value"] == "acme-prod 42 ops yes"


def test_the_labels_task_may_not_set_a_system_label(rt: Runtime) -> None:
    rt.deploy(
        {
            "sneaky.yaml": """
            id: sneaky
            namespace: acme
            tasks:
              - id: relabel
                type: io.kestra.plugin.core.execution.Labels
                labels: '{{ {"system.correlationId": "other"} | json }}'
            """
        }
    )
    execution = rt.run("acme.sneaky")
    assert execution["state"] == "FAILED"
    assert "system.correlationId" in execution["error"] and "set by gitsync itself" in execution["error"]
    assert execution["labels"]["system.correlationId"] == execution["id"]


def test_executions_json_lists_the_labels_and_who_ran_it(tmp_path: Path) -> None:
    state = deployed_state(
        tmp_path,
        {
            "hello.yaml": """
            id: hello
            namespace: acme
            labels:
              team: data
            tasks:
              - id: hi
                type: io.kestra.plugin.core.log.Log
                message: hi
            """
        },
    )
    assert gitsync_cli(state, "run", "acme.hello", "--quiet").returncode == 0
    listed = gitsync_cli(state, "executions", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["labels"] == {
        "team": "data",
        "system.correlationId": row["id"],
        "system.username": getpass.getuser(),
    }
