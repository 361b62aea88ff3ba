"""The executor contract over plain data: TaskInvocation in, TaskResult out, through the local executors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import installed
import pytest
from runtime import Runtime

from gitsync.state.kv import SqliteKeyValue
from runner.api import RunContext
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.executors import InlineExecutor, LocalExecutor, WorkerServices
from runner.engine.invocation import TaskInvocation, TaskLog, TaskResult
from runner.engine.records import TaskRunRecord
from runner.plugin import FlowableTask, Task, TaskList
from runner.registry import Registry
from runner.states import State


def invocation(**changes: Any) -> TaskInvocation:
    values: dict[str, Any] = {
        "type": "io.kestra.plugin.core.debug.Return",
        "properties": {"id": "ret", "type": "io.kestra.plugin.core.debug.Return", "format": "hi"},
        "execution_id": "exec1",
        "namespace": "acme",
        "flow_id": "flow",
        "flow_revision": 3,
        "task_id": "ret",
        "task_run_id": "exec1-0001",
        "attempt": 1,
    }
    values.update(changes)
    return TaskInvocation(**values)


def test_invocation_round_trips_through_json() -> None:
    sent = invocation(
        value="b",
        iteration=1,
        labels={"team": "data"},
        input_files=["kestra:///acme/flow/executions/exec1/a/f.txt"],
        timeout_seconds=2.5,
        max_log_lines=7,
        env={"PATH": "/bin"},
        workdir="/tmp/shared",
    )
    text = sent.to_json()
    assert json.loads(text)["properties"]["format"] == "hi"
    assert TaskInvocation.from_json(text) == sent
    assert TaskInvocation.from_dict(sent.to_dict()) == sent


def test_result_round_trips_through_json() -> None:
    sent = TaskResult(
        "WARNING",
        outputs={"uri": "kestra:///acme/flow/executions/exec1/t/out.csv", "n": [1, 2]},
        logs=[TaskLog("INFO", "hello", "2026-01-01T00:00:00.000+00:00")],
        output_files=["kestra:///acme/flow/executions/exec1/t/out.csv"],
        error=None,
        warnings=["almost"],
        labels={"k": "v"},
        exit_state=None,
    )
    assert TaskResult.from_json(sent.to_json()) == sent
    assert TaskResult.from_json(TaskResult("SUCCESS", exit_state="KILLED").to_json()).exit_state == "KILLED"
    assert TaskResult.from_json(TaskResult("FAILED", error="404", permanent=True).to_json()).permanent


class Waits(Task):
    """Waits until it is cancelled (or 5 s), logging as it goes."""

    type_name: ClassVar[str] = "test.invocation.Waits"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ctx.logger.info("waiting")
        stopped = ctx.cancelled.wait(5)
        return {"stopped": stopped, "workdir": str(ctx.workdir), "labels": ctx.labels}


@pytest.fixture
def services(tmp_path: Path) -> WorkerServices:
    registry = Registry()
    for cls in installed.registry().classes("task"):
        registry.register(cls)
    registry.register(Waits)
    return WorkerServices(registry, tmp_path, SqliteKeyValue(tmp_path / "kv.db"))


def test_inline_executor_resolves_validates_and_packs(services: WorkerServices) -> None:
    result = InlineExecutor(services).submit(invocation()).result()
    assert result.state == "SUCCESS" and result.outputs == {"value": "hi"}


def test_invalid_properties_say_so_as_before(services: WorkerServices) -> None:
    bad = invocation(properties={"id": "ret", "type": "io.kestra.plugin.core.debug.Return", "nope": 1})
    result = InlineExecutor(services).submit(bad).result()
    assert result.state == "FAILED"
    assert result.error is not None and result.error.startswith("rendered properties are invalid: nope:")


def test_exit_is_carried_in_the_result(services: WorkerServices) -> None:
    exit_type = "io.kestra.plugin.core.execution.Exit"
    call = invocation(type=exit_type, properties={"id": "x", "type": exit_type, "state": "KILLED"})
    lines: list[tuple[str, str]] = []
    result = InlineExecutor(services).submit(call, lambda level, message: lines.append((level, message))).result()
    assert (result.state, result.exit_state) == ("SUCCESS", "KILLED")
    assert lines == [("INFO", "Exit: the execution ends in state KILLED")]


def test_logs_are_kept_in_the_result_without_a_sink_and_bounded(services: WorkerServices) -> None:
    log_type = "io.kestra.plugin.core.log.Log"
    call = invocation(
        type=log_type, properties={"id": "l", "type": log_type, "message": ["a", "b", "c"]}, max_log_lines=2
    )
    result = InlineExecutor(services).submit(call).result()
    assert [line.message for line in result.logs][:2] == ["a", "b"]
    assert result.logs[2].level == "WARN" and "log limit of 2 lines" in result.logs[2].message


def test_cancellation_goes_through_the_handle(services: WorkerServices) -> None:
    executor = LocalExecutor(services, workers=2)
    try:
        lines: list[str] = []
        call = invocation(type=Waits.type_name, properties={"id": "w", "type": Waits.type_name}, labels={"a": "b"})
        handle = executor.submit(call, lambda level, message: lines.append(message))
        with pytest.raises(TimeoutError):
            handle.result(timeout=0.05)
        handle.cancel()
        result = handle.result(timeout=5)
        assert handle.cancelled and result.outputs["stopped"] is True
        assert result.outputs["workdir"] == str(services.data_dir / "executions" / "exec1" / "work" / "exec1-0001")
        assert result.outputs["labels"] == {"a": "b"} and lines == ["waiting"]
    finally:
        executor.shutdown()


# -- third-party flowables decide through the FlowableContext protocol -----------------------------------------


class Twice(FlowableTask):
    """Runs its tasks twice (a third-party flowable)."""

    type_name: ClassVar[str] = "test.invocation.Twice"

    tasks: TaskList

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        first = ctx.run_list(self.tasks, scope.child(record.id, self.id, loop_values=("1",), value="1"))
        second = ctx.run_list(self.tasks, scope.child(record.id, self.id, loop_values=("2",), value="2"))
        return (State.SUCCESS if not (first.is_failure or second.is_failure) else State.FAILED), {"runs": 2}


class Undecided(FlowableTask):
    """A flowable class without `decide`."""

    type_name: ClassVar[str] = "test.invocation.Undecided"

    tasks: TaskList


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    registry = installed.registry()
    registry.register(Twice)
    registry.register(Undecided)
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()
    registry.unregister(Twice)
    registry.unregister(Undecided)


def test_a_third_party_flowable_decides_itself(rt: Runtime) -> None:
    rt.deploy(
        {
            "twice.yaml": """
            id: twice
            namespace: acme
            tasks:
              - id: again
                type: test.invocation.Twice
                tasks:
                  - id: say
                    type: io.kestra.plugin.core.debug.Return
                    format: "{{ taskrun.value }}"
              - id: missing
                type: test.invocation.Undecided
                tasks:
                  - id: never
                    type: io.kestra.plugin.core.debug.Return
                    format: x
            """
        }
    )
    execution = rt.run("acme.twice")
    states = rt.states(execution)
    assert states["again"] == "SUCCESS" and states["say[1]"] == "SUCCESS" and states["say[2]"] == "SUCCESS"
    assert states["missing"] == "FAILED" and "never" not in states
    message = "flowable type test.invocation.Undecided has no decide(ctx, scope, record) method"
    assert any(message in line for line in execution["logs"])


class StartsWhenLetGo(Task):
    """Reports its start only once the test lets it go (as a script does once its process runs), then waits."""

    type_name: ClassVar[str] = "test.invocation.StartsWhenLetGo"
    reports_start: ClassVar[bool] = True
    gate: ClassVar[threading.Event] = threading.Event()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self.gate.wait(5)
        ctx.mark_started()
        return {"stopped": ctx.cancelled.wait(5)}


def test_a_task_that_reports_its_start_is_started_when_it_says(services: WorkerServices) -> None:
    services.registry.register(StartsWhenLetGo)
    executor = LocalExecutor(services, workers=2)
    try:
        call = invocation(type=StartsWhenLetGo.type_name, properties={"id": "s", "type": StartsWhenLetGo.type_name})
        handle = executor.submit(call)
        assert not handle.wait_started(0.2)
        StartsWhenLetGo.gate.set()
        assert handle.wait_started(5)
        handle.cancel()
        assert handle.result(timeout=5).outputs == {"stopped": True}
    finally:
        StartsWhenLetGo.gate.clear()
        executor.shutdown()


def test_a_script_is_started_while_its_process_runs_and_other_tasks_when_they_run(services: WorkerServices) -> None:
    shell = "io.kestra.plugin.scripts.shell.Commands"
    process = {"type": "io.kestra.plugin.core.runner.Process"}
    executor = LocalExecutor(services, workers=2)
    try:
        script = invocation(
            type=shell, properties={"id": "sh", "type": shell, "taskRunner": process, "commands": ["sleep 30"]}
        )
        waits = invocation(type=Waits.type_name, properties={"id": "w", "type": Waits.type_name}, task_run_id="w-1")
        for call in (script, waits):
            handle = executor.submit(call, lambda level, message: None)
            assert handle.wait_started(5), call.type
            with pytest.raises(TimeoutError):  # started, and still running
                handle.result(timeout=0.05)
            handle.cancel()
            assert handle.result(timeout=15).state in ("KILLED", "SUCCESS")
    finally:
        executor.shutdown()


def test_a_task_that_fails_before_it_starts_is_started_once_it_ended(services: WorkerServices) -> None:
    executor = LocalExecutor(services, workers=2)
    try:
        shell = "io.kestra.plugin.scripts.shell.Commands"
        handle = executor.submit(invocation(type=shell, properties={"id": "sh", "type": shell, "nope": 1}))
        assert handle.result(timeout=5).state == "FAILED"
        assert handle.wait_started(0)
    finally:
        executor.shutdown()
