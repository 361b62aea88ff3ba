"""Kestra fidelity of expressions (issue #11): input defaults, typed inputs as Kestra prints them, the functions
that read the running execution, and Kestra's argument names for every filter and function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime, deployed_state, gitsync_cli


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


# ---------------------------------------------------------------------------------------------- input defaults


DEFAULTS_FLOW = """
    id: defaults
    namespace: acme
    inputs:
      - id: region
        type: STRING
        defaults: eu
      - id: bucket
        type: STRING
        defaults: "data-{{ inputs.region }}"
      - id: since
        type: STRING
        defaults: "{{ nope.day }}"
    tasks:
      - id: show
        type: io.kestra.plugin.core.debug.Return
        format: "{{ inputs.bucket }} {{ inputs.since }}"
"""


def test_an_undefined_variable_in_an_input_default_is_an_input_error(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"defaults.yaml": DEFAULTS_FLOW})
    done = gitsync_cli(state, "run", "acme.defaults")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "input 'since'" in done.stderr
    assert "undefined variable 'nope.day'" in done.stderr
    assert "default" in done.stderr
    listed = gitsync_cli(state, "executions", "--flow", "acme.defaults", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    # given a value, the default is not rendered, and a default may use the inputs declared before it
    done = gitsync_cli(state, "run", "acme.defaults", "--input", "since=monday")
    assert done.returncode == 0, done.stdout + done.stderr
    (execution,) = json.loads(gitsync_cli(state, "executions", "--flow", "acme.defaults", "--format", "json").stdout)
    assert execution["inputs"] == {"region": "eu", "bucket": "data-eu", "since": "monday"}


# ---------------------------------------------------------------------------------------------- typed inputs


TYPED_FLOW = """
    id: typed
    namespace: acme
    inputs:
      - id: delay
        type: DURATION
        defaults: PT0.01S
      - id: timeout
        type: DURATION
        defaults: P1D
      - id: at
        type: DATETIME
        defaults: "2024-01-15T10:00:00.1+02:00"
      - id: day
        type: DATE
        defaults: "2024-01-15"
      - id: clock
        type: TIME
        defaults: "10:15:00"
      - id: days
        type: ARRAY
        itemType: DATE
        defaults: ["2024-02-29"]
    tasks:
      - id: wait
        type: io.kestra.plugin.core.flow.Pause
        delay: "{{ inputs.delay }}"
      - id: nap
        type: io.kestra.plugin.core.flow.Sleep
        duration: "{{ inputs.delay }}"
      - id: show
        type: io.kestra.plugin.core.debug.Return
        timeout: "{{ inputs.timeout }}"
        format: >-
          {{ inputs.delay }} {{ inputs.timeout }} {{ inputs.at }} {{ inputs.day }} {{ inputs.clock }}
          {{ inputs.days }}
      - id: fmt
        type: io.kestra.plugin.core.debug.Return
        format: "{{ inputs.at | date('yyyy-MM-dd HH:mm') }} {{ inputs.day | date('dd/MM/yyyy') }}"
"""


def test_typed_inputs_render_as_kestra_prints_them(rt: Runtime) -> None:
    rt.deploy({"typed.yaml": TYPED_FLOW})
    execution = rt.run("acme.typed")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert rt.states(execution) == {"wait": "SUCCESS", "nap": "SUCCESS", "show": "SUCCESS", "fmt": "SUCCESS"}
    outputs = {run["task_id"]: run["outputs"].get("value") for run in execution["task_runs"]}
    # Java's Duration (PT24H, never P1D), Instant (UTC, millis in groups of three), LocalDate, LocalTime (HH:mm)
    assert outputs["show"] == 'PT0.01S PT24H 2024-01-15T08:00:00.100Z 2024-01-15 10:15 ["2024-02-29"]'
    assert outputs["fmt"] == "2024-01-15 08:00 15/01/2024"
    given = rt.run("acme.typed", delay="PT0.02S", timeout="PT90M", at="2024-06-01T00:00:00Z", clock="23:59:30.5")
    assert given["state"] == "SUCCESS", given["error"]
    show = next(run for run in given["task_runs"] if run["task_id"] == "show")
    assert show["outputs"]["value"] == 'PT0.02S PT1H30M 2024-06-01T00:00:00Z 2024-01-15 23:59:30.500 ["2024-02-29"]'


# ---------------------------------------------------------------------------------------------- execution functions


REPORT_FLOW = """
    id: report
    namespace: acme
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: ["a", "b"]
        tasks:
          - id: echo
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: boom
        type: io.kestra.plugin.core.execution.Fail
        errorMessage: the warehouse is closed
    errors:
      - id: failed
        type: io.kestra.plugin.core.debug.Return
        format: "{{ tasksWithState('failed') }}"
      - id: failed_by_default
        type: io.kestra.plugin.core.debug.Return
        format: "{{ tasksWithState() | length }}"
      - id: succeeded
        type: io.kestra.plugin.core.debug.Return
        format: "{{ tasksWithState(state='SUCCESS') }}"
      - id: logs
        type: io.kestra.plugin.core.debug.Return
        format: "{{ errorLogs() }}"
      - id: first_log
        type: io.kestra.plugin.core.debug.Return
        format: "{{ errorLogs()[0].taskId }}: {{ errorLogs()[0].message }}"
"""


def test_an_errors_branch_reports_what_went_wrong(rt: Runtime) -> None:
    rt.deploy({"report.yaml": REPORT_FLOW})
    execution = rt.run("acme.report")
    assert execution["state"] == "FAILED"
    states = rt.states(execution)
    for task in ("failed", "failed_by_default", "succeeded", "logs", "first_log"):
        assert states[task] == "SUCCESS", execution["logs"]
    value = {run["task_id"]: run["outputs"].get("value") for run in execution["task_runs"]}
    assert json.loads(value["failed"]) == [{"state": "FAILED", "taskId": "boom"}]
    assert value["failed_by_default"] == "1"
    succeeded = json.loads(value["succeeded"])
    assert sorted(succeeded, key=lambda t: (t["taskId"], t.get("value", ""))) == [
        {"state": "SUCCESS", "taskId": "each"},
        {"state": "SUCCESS", "taskId": "echo", "value": "a"},
        {"state": "SUCCESS", "taskId": "echo", "value": "b"},
        {"state": "SUCCESS", "taskId": "failed"},  # the errors branch's own tasks that ended before it
        {"state": "SUCCESS", "taskId": "failed_by_default"},
    ]
    (entry,) = json.loads(value["logs"])  # Kestra's LogEntry: the execution's ERROR logs, oldest first
    boom = next(run for run in execution["task_runs"] if run["task_id"] == "boom")
    assert entry["level"] == "ERROR" and "the warehouse is closed" in entry["message"]
    assert entry["namespace"] == "acme" and entry["flowId"] == "report" and entry["executionId"] == execution["id"]
    assert entry["taskId"] == "boom" and entry["taskRunId"] == boom["id"] and entry["attemptNumber"] == 1
    assert entry["timestamp"].endswith("Z")
    assert value["first_log"].startswith("boom: ") and "the warehouse is closed" in value["first_log"]


def test_file_functions_read_the_execution_files(rt: Runtime) -> None:
    rt.deploy(
        {
            "files.yaml": """
            id: files
            namespace: acme
            tasks:
              - id: make
                type: io.kestra.plugin.core.storage.LocalFiles
                inputs:
                  hello.txt: "hello"
                  empty.txt: ""
                outputs: ["*.txt"]
              - id: check
                type: io.kestra.plugin.core.debug.Return
                format: >-
                  {{ fileSize(outputs.make.uris['hello.txt']) }}
                  {{ fileExists(outputs.make.uris['hello.txt']) }}
                  {{ fileExists(outputs.make.uris['hello.txt'] ~ '.gone') }}
                  {{ isFileEmpty(outputs.make.uris['empty.txt']) }}
                  {{ fileEmpty(path=outputs.make.uris['hello.txt']) }}
            """
        }
    )
    execution = rt.run("acme.files")
    assert execution["state"] == "SUCCESS", execution["logs"]
    check = next(run for run in execution["task_runs"] if run["task_id"] == "check")
    assert check["outputs"]["value"] == "5 true false true false"
