"""The expression functions that read the running execution, in Kestra's shapes, over `ExecutionReads`:

    tasksWithState(state='FAILED')  -> [{"state": "FAILED", "taskId": "boom"}, {"state": …, "taskId": …, "value": …}]
    errorLogs()                     -> [Kestra's LogEntry: namespace, flowId, taskId, executionId, taskRunId,
                                        attemptNumber, timestamp, level, message, deleted], oldest first

The engine installs them in the `RenderRuntime` of every render of the execution (`execution_functions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.engine.context import ExecutionReads
from runner.engine.records import LogLine, TaskRunRecord

ERROR_LOGS = 25
"""How many ERROR lines `errorLogs()` gives: Kestra's LogService reads the first page of 25."""


def execution_functions(reads: ExecutionReads, namespace: str, flow_id: str) -> dict[str, Callable[..., Any]]:
    """`tasksWithState` and `errorLogs` bound to one execution."""
    from runner.expressions.functions import FunctionError  # imported with the renderer, when an execution runs

    def tasks_with_state(state: Any = "FAILED") -> list[dict[str, Any]]:
        if not isinstance(state, str):
            raise FunctionError(f"tasksWithState(state) takes a state name such as 'FAILED', not {state!r}")
        return tasks_in_state(reads.task_runs(), state.upper())

    def error_logs() -> list[dict[str, Any]]:
        runs = {run.id: run for run in reads.task_runs()}
        return [log_entry(line, runs.get(line.task_run_id or ""), namespace, flow_id) for line in reads.error_logs()]

    return {"tasksWithState": tasks_with_state, "errorLogs": error_logs}


def tasks_in_state(runs: list[TaskRunRecord], state: str) -> list[dict[str, Any]]:
    """Kestra's `tasks` variable filtered by state: one entry per task (per task and loop value inside a loop), in
    the state of its latest attempt; `value` only for a task run that has one."""
    latest: dict[tuple[str, str | None], TaskRunRecord] = {}
    for run in runs:
        latest[(run.task_id, None if run.value is None else str(run.value))] = run
    out: list[dict[str, Any]] = []
    for (task_id, value), run in latest.items():
        if run.state.value != state:
            continue
        entry: dict[str, Any] = {"state": run.state.value, "taskId": task_id}
        if value is not None:
            entry["value"] = value
        out.append(entry)
    return out


def log_entry(line: LogLine, run: TaskRunRecord | None, namespace: str, flow_id: str) -> dict[str, Any]:
    """One log line as Kestra's LogEntry serialises (null fields left out, `attemptNumber` always there)."""
    from runner.expressions.dates import iso_instant

    entry: dict[str, Any] = {"namespace": namespace, "flowId": flow_id}
    if run is not None:
        entry["taskId"] = run.task_id
    entry["executionId"] = line.execution_id
    if line.task_run_id is not None:
        entry["taskRunId"] = line.task_run_id
    entry["attemptNumber"] = run.attempt if run is not None else None
    entry.update(timestamp=iso_instant(line.at), level=line.level, message=line.message, deleted=False)
    return entry
