"""The remaining core types (#15 point 5), run as a user runs them: flows committed to a real repository, synced,
and executed by the real engine (`Runtime`): Kestra 2.x `flow.Loop`, the legacy state store (`state.Get/Set/
Delete`, kept in the KV store), and the legacy names and refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime import Runtime, stored_file

from plugins import ion


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    built = Runtime(tmp_path)
    yield built
    built.close()


def _outputs_by_task(execution: dict) -> dict[str, list]:
    out: dict[str, list] = {}
    for run in execution["task_runs"]:
        out.setdefault(run["task_id"], []).append(run["outputs"])
    return out


LOOP = """
id: loop
namespace: acme
inputs:
  - id: cities
    type: JSON
    defaults: '{"fr": "Paris", "de": "Berlin"}'
tasks:
  - id: over_list
    type: io.kestra.plugin.core.flow.Loop
    values: ["a", "b", "c"]
    tasks:
      - id: nested
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: say
            type: io.kestra.plugin.core.debug.Return
            format: "{{ item.index }}={{ item.value }}"
  - id: over_map
    type: io.kestra.plugin.core.flow.Loop
    values: "{{ inputs.cities }}"
    concurrencyLimit: 0
    tasks:
      - id: city
        type: io.kestra.plugin.core.debug.Return
        format: "{{ item.key }}:{{ item.value }}"
  - id: lines
    type: io.kestra.plugin.core.storage.Write
    content: |
      first
      second
  - id: over_file
    type: io.kestra.plugin.core.flow.Loop
    values: "{{ outputs.lines.uri }}"
    tasks:
      - id: line
        type: io.kestra.plugin.core.debug.Return
        format: "line {{ item.index }}: {{ item.value }}"
"""


def test_loop_gives_every_task_inside_the_item_of_a_list_a_map_or_a_file(runtime: Runtime) -> None:
    runtime.deploy({"loop.yaml": LOOP})
    execution = runtime.run("acme.loop")
    assert execution["state"] == "SUCCESS", execution["logs"]
    outputs = _outputs_by_task(execution)
    assert [o["value"] for o in outputs["say"]] == ["0=a", "1=b", "2=c"]  # two levels down, in order
    assert sorted(o["value"] for o in outputs["city"]) == ["de:Berlin", "fr:Paris"]
    assert [o["value"] for o in outputs["line"]] == ["line 0: first", "line 1: second"]
    values = {run["value"] for run in execution["task_runs"] if run["task_id"] == "city"}
    assert values == {"fr", "de"}  # each iteration's task run is named by its key


def test_loop_refuses_values_that_are_not_a_list_or_a_map(runtime: Runtime) -> None:
    flow = """
    id: bad
    namespace: acme
    tasks:
      - id: loop
        type: io.kestra.plugin.core.flow.Loop
        values: "not a list"
        tasks:
          - id: x
            type: io.kestra.plugin.core.debug.Return
            format: x
    """
    runtime.deploy({"bad.yaml": flow})
    execution = runtime.run("acme.bad")
    assert execution["state"] == "FAILED"
    assert any("values must be a list, a map, a JSON array or object" in line for line in execution["logs"])


STATE = """
id: counter
namespace: acme
tasks:
  - id: before
    type: io.kestra.plugin.core.state.Get
    name: runs
  - id: count
    type: io.kestra.plugin.core.state.Set
    name: runs
    data:
      value: "{{ (outputs.before.data.value ?? 0) | number + 1 }}"
      note: kept
  - id: per_value
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: mark
        type: io.kestra.plugin.core.state.Set
        name: marks
        data:
          seen: "{{ taskrun.value }}"
  - id: after
    type: io.kestra.plugin.core.state.Get
    name: runs
"""


def test_the_state_store_keeps_a_map_per_name_across_executions_in_the_kv_store(runtime: Runtime) -> None:
    runtime.deploy({"counter.yaml": STATE})
    first = runtime.run("acme.counter")
    assert first["state"] == "SUCCESS", first["logs"]
    assert _outputs_by_task(first)["before"] == [{"data": {}, "count": 0}]
    second = runtime.run("acme.counter")
    assert second["state"] == "SUCCESS", second["logs"]
    after = _outputs_by_task(second)["after"][0]
    assert after == {"data": {"value": "2", "note": "kept"}, "count": 2}
    reader = """
    id: reader
    namespace: acme
    tasks:
      - id: keys
        type: io.kestra.plugin.core.kv.GetKeys
        prefix: kestra-state.counter
      - id: runs
        type: io.kestra.plugin.core.debug.Return
        format: "{{ kv('kestra-state.counter.runs').value }}"
    """
    runtime.deploy({"reader.yaml": reader})
    read = _outputs_by_task(runtime.run("acme.reader"))
    keys = read["keys"][0]["keys"]
    assert "kestra-state.counter.runs" in keys  # the state store is the namespace's KV store
    assert sum(key.startswith("kestra-state.counter.marks.") for key in keys) == 2  # one per taskrun.value
    assert read["runs"] == [{"value": "2"}]


def test_state_delete_and_get_with_error_on_missing(runtime: Runtime) -> None:
    flow = """
    id: gone
    namespace: acme
    tasks:
      - id: set
        type: io.kestra.plugin.core.state.Set
        name: s
        data: {a: 1}
      - id: delete
        type: io.kestra.plugin.core.state.Delete
        name: s
      - id: again
        type: io.kestra.plugin.core.state.Delete
        name: s
      - id: get
        type: io.kestra.plugin.core.state.Get
        name: s
        errorOnMissing: true
    """
    runtime.deploy({"gone.yaml": flow})
    execution = runtime.run("acme.gone")
    outputs = _outputs_by_task(execution)
    assert outputs["delete"] == [{"deleted": True}] and outputs["again"] == [{"deleted": False}]
    assert execution["state"] == "FAILED"
    assert any("state 's' does not exist (errorOnMissing is true)" in line for line in execution["logs"])
    assert json.dumps(outputs["set"][0]["count"]) == "1"


FETCH = """
id: fetch
namespace: acme
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hello
  - id: careful
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: careful now
  - id: quiet
    type: io.kestra.plugin.core.log.Log
    level: DEBUG
    message: not fetched
  - id: all
    type: io.kestra.plugin.core.log.Fetch
  - id: warnings
    type: io.kestra.plugin.core.log.Fetch
    executionId: "{{ execution.id }}"
    level: WARN
  - id: of_hello
    type: io.kestra.plugin.core.log.Fetch
    tasksId: [hello]
"""


def test_log_fetch_writes_the_execution_logs_at_a_level_or_above_to_an_ion_file(
    runtime: Runtime, tmp_path: Path
) -> None:
    runtime.deploy({"fetch.yaml": FETCH})
    execution = runtime.run("acme.fetch")
    assert execution["state"] == "SUCCESS", execution["logs"]
    outputs = {task: found[0] for task, found in _outputs_by_task(execution).items()}
    state = (str(tmp_path / "state.db"), str(tmp_path / "data"))

    def lines(task: str) -> list[tuple[str, str, str]]:
        rows = list(ion.read_file(stored_file(state, outputs[task]["uri"])))
        assert outputs[task]["size"] == len(rows)
        return [(row["taskId"], row["level"], row["message"]) for row in rows]

    every = lines("all")
    assert ("hello", "INFO", "hello") in every and ("careful", "WARN", "careful now") in every
    assert all(message != "not fetched" for _, _, message in every)  # DEBUG is below INFO
    assert lines("warnings") == [("careful", "WARN", "careful now")]
    assert lines("of_hello") == [("hello", "INFO", "hello")]


PAUSED = """
id: paused
namespace: acme
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: resumed
"""

RESUMER = """
id: resumer
namespace: acme
inputs:
  - id: executionId
    type: STRING
tasks:
  - id: resume
    type: io.kestra.plugin.core.execution.Resume
    executionId: "{{ inputs.executionId }}"
"""


def test_resume_resumes_a_paused_execution_and_refuses_one_that_is_not(runtime: Runtime) -> None:
    runtime.deploy({"paused.yaml": PAUSED, "resumer.yaml": RESUMER})
    paused = runtime.runs.create("acme.paused", {})
    runtime.runs.start_new(paused)
    deadline = time.monotonic() + 60
    while runtime.execution(paused)["state"] != "PAUSED":
        assert time.monotonic() < deadline, "the execution never paused"
        time.sleep(0.05)
    resumer = runtime.run("acme.resumer", executionId=paused)
    assert resumer["state"] == "SUCCESS", resumer["logs"]
    while runtime.execution(paused)["state"] != "SUCCESS":
        assert time.monotonic() < deadline, runtime.execution(paused)["state"]
        time.sleep(0.05)
    assert runtime.states(runtime.execution(paused))["after"] == "SUCCESS"

    again = runtime.run("acme.resumer", executionId=paused)
    assert again["state"] == "FAILED"
    assert any(f"cannot resume: execution {paused} is SUCCESS, not PAUSED" in line for line in again["logs"])


@pytest.mark.parametrize(
    ("task", "said"),
    [
        (
            "type: io.kestra.plugin.core.flow.Template\n    namespace: acme\n    templateId: shared",
            "templates were deprecated in Kestra 0.11 and removed in 2.0",
        ),
        (
            "type: io.kestra.core.tasks.flows.Template\n    namespace: acme\n    templateId: shared",
            "call it with io.kestra.plugin.core.flow.Subflow",
        ),
        (
            "type: io.kestra.plugin.scripts.nashorn.FileTransform\n    from: x\n    script: row = null",
            "Nashorn (JavaScript on the JVM) script tasks are not supported",
        ),
    ],
)
def test_types_kestra_removed_are_refused_by_validate_saying_what_to_use(tmp_path: Path, task: str, said: str) -> None:
    flow = tmp_path / "old.yaml"
    flow.write_text(f"id: old\nnamespace: acme\ntasks:\n  - id: t\n    {task}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "validate", str(flow)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert said in output and "old.yaml:4:" in output
    assert "unknown task type" not in output and "Traceback" not in output


def test_the_misspelt_flows_foreachitem_name_of_a_blueprint_is_foreachitem(tmp_path: Path) -> None:
    flow = tmp_path / "items.yaml"
    flow.write_text(
        "id: items\nnamespace: acme\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flows.ForEachItem\n"
        "    items: kestra:///x\n    namespace: acme\n    flowId: child\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "validate", str(flow)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
