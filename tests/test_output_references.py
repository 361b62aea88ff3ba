"""`{{ outputs.X }}` naming a task the flow does not have: Kestra accepts the flow (the expression may be covered by
`??`, sit in a `runIf`, or name a task of a subflow), so gitsync warns and loads it; what happens when it runs is
Kestra's. Inside a Subflow task's deprecated `outputs` map, `outputs.X` names the child execution's tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime

from gitsync.cli.main import main

GUARDED = """\
id: guarded
namespace: acme
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hi
  - id: covered
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.helo.value ?? 'no value' }}"
  - id: never
    type: io.kestra.plugin.core.log.Log
    runIf: "{{ outputs.hello.value == 'bye' }}"
    message: not printed
  - id: breaks
    type: io.kestra.plugin.core.log.Log
    runIf: "{{ outputs.nowhere == 2 }}"
    message: not printed either
  - id: bracket
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs['hello-x'].value ?? outputs.hello-x }}"
"""

CHILD = """
id: child
namespace: acme
inputs:
  - id: word
    type: STRING
tasks:
  - id: pick
    type: io.kestra.plugin.core.debug.Return
    format: "picked {{ inputs.word }}"
"""

PARENT = """
id: parent
namespace: acme
tasks:
  - id: launch
    type: io.kestra.plugin.core.flow.Subflow
    namespace: acme
    flowId: child
    inputs:
      word: tea
    outputs:
      extracted: "{{ outputs.pick.value }}"
      either: "{{ outputs.other.value ?? outputs.pick.value | upper }}"
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.launch.outputs.extracted }} / {{ outputs.launch.outputs.either }}"
"""


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


def test_validate_warns_of_an_unknown_task_in_outputs_and_accepts_the_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "guarded.yaml"
    path.write_text(GUARDED)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 file(s): 1 valid, 0 invalid" in out
    assert (
        f"{path}:9:5: warning: flow 'acme.guarded': tasks[1].message: expression refers to outputs.helo, "
        "but this flow has no task 'helo' (did you mean 'hello'?)"
    ) in out
    assert f"{path}:16:5: warning: flow 'acme.guarded': tasks[3].runIf: expression refers to outputs.nowhere" in out
    # the bracket form names a task 'hello-x'; `outputs.hello-x` is outputs.hello minus x (no warning of its own)
    assert f"{path}:20:5: warning: flow 'acme.guarded': tasks[4].message: expression refers to outputs.hello-x" in out
    assert out.count("warning:") == 3


def test_an_unknown_task_in_outputs_fails_only_where_nothing_covers_it(rt: Runtime) -> None:
    rt.deploy({"guarded.yaml": GUARDED})
    execution = rt.run("acme.guarded")
    # Kestra's TaskWithRunIfTest: the runIf naming no task fails its task and the execution
    assert rt.states(execution) == {"hello": "SUCCESS", "covered": "SUCCESS", "never": "SKIPPED", "breaks": "FAILED"}
    assert "runIf: undefined variable 'outputs.nowhere'" in execution["error"]
    assert execution["state"] == "FAILED"
    assert "no value" in execution["logs"]


def test_subflow_outputs_map_reads_the_child_execution_s_tasks(rt: Runtime, tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT)
    assert main(["validate", str(tmp_path / "parent.yaml")]) == 0  # `outputs.pick` is the child's: no warning
    rt.deploy({"child.yaml": CHILD, "parent.yaml": PARENT})
    execution = rt.run("acme.parent")
    assert execution["state"] == "SUCCESS", execution["error"]
    launch, use = (next(r for r in execution["task_runs"] if r["task_id"] == t) for t in ("launch", "use"))
    assert launch["outputs"]["outputs"] == {"extracted": "picked tea", "either": "PICKED TEA"}
    assert use["outputs"]["value"] == "picked tea / PICKED TEA"


def test_subflow_outputs_that_cannot_be_extracted_fail_the_task_not_the_child(rt: Runtime) -> None:
    rt.deploy(
        {
            "child.yaml": CHILD,
            "parent.yaml": PARENT.replace("{{ outputs.pick.value }}", "{{ outputs.missing.value }}"),
        }
    )
    execution = rt.run("acme.parent")
    assert execution["state"] == "FAILED"
    launch = next(r for r in execution["task_runs"] if r["task_id"] == "launch")
    assert launch["state"] == "FAILED"
    assert "outputs.extracted" in launch["error"] and "missing" in launch["error"]
    assert rt.execution(launch["outputs"]["executionId"])["state"] == "SUCCESS"
