"""The executor contract over plain data: a `TaskInvocation` goes in, a `TaskResult` comes out.

The engine renders a runnable task's properties and hands an executor a `TaskInvocation`; the executor
resolves the class by its type name, validates the properties, builds the task's `RunContext` from its own
services (storage, key-value store, a logger) and packs what happened into a `TaskResult`. Both hold only
JSON data (`to_dict`/`from_dict`, `to_json`/`from_json`), so an invocation can cross a process or a machine
(the Celery workers of a later issue implement the same `Executor` protocol). The local executors pass the
objects as they are, without encoding them.

Cancellation (a kill, a timeout) goes through the `TaskHandle` the executor returns; log lines are streamed
to the `LogSink` given to `submit` while the task runs (locally: straight to the recorder, so
`gitsync logs --follow` stays live). An executor without a live channel returns them in `TaskResult.logs`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from runner.states import State

STORAGE_SCHEME = "kestra:///"


@dataclass
class TaskInvocation:
    """One attempt of one runnable task, as plain data."""

    type: str
    """The task's canonical type name; the executor resolves the class from its registry."""
    properties: dict[str, Any]
    """The rendered properties (JSON data), validated again by the executor."""
    execution_id: str
    namespace: str
    flow_id: str
    flow_revision: int
    task_id: str
    task_run_id: str
    attempt: int
    value: Any = None
    """The ForEach value of this task run (`taskrun.value`), if any."""
    iteration: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    """The execution's labels when the task starts."""
    input_files: list[str] = field(default_factory=list)
    """The kestra:/// URIs the properties name (whole values), for a worker to fetch before the task runs."""
    timeout_seconds: float | None = None
    max_log_lines: int = 10_000
    """Lines past this are dropped (one WARN line says so)."""
    env: dict[str, str] = field(default_factory=dict)
    """The environment of processes the task starts."""
    workdir: str | None = None
    """The shared working directory of an enclosing WorkingDirectory; None: the task run's own."""
    execution: dict[str, Any] | None = None
    """For a task that `reads_execution`: the `runner.api.ExecutionView` it reports on, as plain data."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskInvocation:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TaskInvocation:
        return cls.from_dict(json.loads(text))


@dataclass
class TaskLog:
    level: str
    message: str
    at: str
    """ISO-8601 UTC time of the line."""


@dataclass
class TaskResult:
    """What one attempt of a runnable task produced."""

    state: str
    """SUCCESS, WARNING, FAILED or KILLED (a `State` value)."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The task's outputs (also those a failing task kept)."""
    logs: list[TaskLog] = field(default_factory=list)
    """Lines not streamed to a sink (empty when they were)."""
    output_files: list[str] = field(default_factory=list)
    """The kestra:/// URIs the outputs name (whole values)."""
    error: str | None = None
    """Why the task failed (unmasked: the engine masks it)."""
    permanent: bool = False
    """The failure is permanent (`TaskFailed.permanent`): a retry would fail the same way."""
    warnings: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    """Labels the task adds to its execution."""
    exit_state: str | None = None
    """The state the Exit task asks the whole execution to end in."""

    @property
    def run_state(self) -> State:
        return State(self.state)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskResult:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["logs"] = [line if isinstance(line, TaskLog) else TaskLog(**line) for line in values.get("logs", [])]
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TaskResult:
        return cls.from_dict(json.loads(text))


class LogSink(Protocol):
    """Receives a task's log lines while it runs (level upper-cased; the receiver masks secrets)."""

    def __call__(self, level: str, message: str) -> None: ...


class TaskHandle(Protocol):
    """A submitted invocation: its result when done, and the way to stop it."""

    def result(self, timeout: float | None = None) -> TaskResult:
        """The result; raises `TimeoutError` when it is not there within `timeout` seconds."""
        ...

    def cancel(self) -> None:
        """Ask the task to stop (kill or timeout): its `ctx.cancelled` is set."""
        ...

    def wait_started(self, timeout: float | None = None) -> bool:
        """Whether the task has begun within `timeout` seconds (a script: its process started; any task that
        ended has begun)."""
        ...

    @property
    def cancelled(self) -> bool:
        """Whether `cancel` was called."""
        ...


class Executor(Protocol):
    """Runs invocations: the local thread pool and inline executors, later Celery workers."""

    def submit(self, invocation: TaskInvocation, sink: LogSink | None = None) -> TaskHandle: ...

    def shutdown(self) -> None: ...


def work_root(data_dir: Path, execution_id: str) -> Path:
    """The folder holding the working directories of an execution's task runs."""
    return data_dir / "executions" / execution_id / "work"


def task_workdir(data_dir: Path, execution_id: str, task_run_id: str) -> Path:
    """The working directory of a task run of its own (the engine's `workingDir` variable names it)."""
    return work_root(data_dir, execution_id) / task_run_id


def storage_uris(value: Any) -> list[str]:
    """The kestra:/// URIs among the (nested) string values of `value`."""
    if STORAGE_SCHEME not in repr(value):  # plain data: a string holding the scheme shows it in the repr
        return []
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item.startswith(STORAGE_SCHEME):
                found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found
