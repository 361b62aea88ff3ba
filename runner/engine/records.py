"""The values the engine exchanges with the control plane: what to run, what happened, and the services it uses.

`Recorder` and `Coordinator` are the control plane's side (gitsync.executions implements them over SQLite); the
engine never writes state itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from runner.api import ExecutionView, KeyValue, Storage
from runner.engine.invocation import Executor
from runner.flow import Flow
from runner.masking import Masker
from runner.states import State


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds") if moment else None


@dataclass
class TaskRunRecord:
    """One attempt of one task (a ForEach value or Parallel branch is its own)."""

    id: str
    execution_id: str
    task_id: str
    task_type: str
    parent_id: str | None
    value: Any
    iteration: int | None
    attempt: int
    state: State
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    loop_values: tuple[str, ...] = ()
    """The values of the loops it runs in, outermost first: where its outputs are (`outputs.t.<value>.<key>`)."""


RunPlace = tuple[str | None, str, str | None, int | None]
"""Where a task run stands in its execution: its parent task run's id, its task's id, its value and iteration."""


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay starts from (`runner.engine.replay.plan_replay`): the task runs of the execution it replays
    that are carried over, done, and the flowables that run again around them. Places are the original's."""

    original_id: str
    """The execution replayed."""
    restart: TaskRunRecord
    """The original's task run the replay runs again from (its first attempt)."""
    carried: dict[RunPlace, TaskRunRecord] = field(default_factory=dict)
    """The outermost task runs carried over (last attempts), by place; what ran inside them comes with them."""
    inside: dict[str, list[TaskRunRecord]] = field(default_factory=dict)
    """A carried task run's id -> the task runs inside it (last attempts), each after its parent."""
    reentered: dict[RunPlace, str] = field(default_factory=dict)
    """The flowables that hold a carried task run and run again (decide again) -> their original task run id."""


@dataclass(frozen=True)
class LogLine:
    execution_id: str
    task_run_id: str | None
    at: datetime
    level: str
    message: str


@dataclass
class ExecutionRequest:
    """What to run: a flow revision with its (already resolved) inputs, pinned to a commit."""

    id: str
    flow: Flow
    revision: int
    commit: str
    inputs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    trigger: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=utcnow)
    original_id: str | None = None
    started_at: datetime | None = None
    """When the control plane admitted it (its RUNNING state written then, with this start); None: now."""
    replay: ReplayPlan | None = None
    """A replay of an ended execution: what it carries over from it (None: it runs from the start)."""


@dataclass
class ExecutionOutcome:
    state: State
    outputs: dict[str, Any]
    labels: dict[str, str]
    error: str | None
    task_outputs: dict[str, Any]
    retry: Any = None
    """The CREATE_NEW_EXECUTION `retry` block of the failure that ended a FAILED execution (a task's, a flowable's
    or the flow's): the control plane runs the flow again as a new execution when it allows one more attempt."""


@dataclass(frozen=True)
class SubflowResult:
    execution_id: str
    state: State
    outputs: dict[str, Any]
    """The child's flow outputs."""
    task_outputs: dict[str, Any] = field(default_factory=dict)
    """The child's task outputs (what `outputs` means in a Subflow task's deprecated `outputs` map)."""
    declares_outputs: bool = False
    """The child flow declares flow outputs: they are the task's, and its deprecated `outputs` map is not read."""


class Recorder(Protocol):
    """Where the engine's transitions go: task runs, execution states and logs (the control plane persists them).

    `batch()` is a context manager: the calling thread's `task_run`/`logs` calls inside it may be written together
    when it ends (the engine uses it around one attempt of a task that runs inline).
    """

    def task_run(self, record: TaskRunRecord) -> None: ...
    def execution(self, execution_id: str, state: State, **fields: Any) -> None: ...
    def logs(self, lines: Sequence[LogLine]) -> None: ...
    def batch(self) -> AbstractContextManager[None]: ...


class Coordinator(Protocol):
    """What needs other executions or the outside world: subflows, and waiting for a paused execution's resume."""

    def subflow(
        self,
        parent: ExecutionRequest,
        task: Any,
        inputs: dict[str, Any],
        labels: dict[str, str],
        cancelled: threading.Event,
    ) -> SubflowResult: ...
    def wait_for_resume(self, execution_id: str, cancelled: threading.Event) -> dict[str, Any] | None: ...
    def execution_view(self, execution_id: str) -> ExecutionView | None:
        """Another execution as recorded (a notification task's `executionId`); None when there is none."""
        ...


class Renderer(Protocol):
    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any: ...
    def evaluate(self, expression: str, variables: Mapping[str, Any]) -> Any: ...


@dataclass
class Services:
    """What the engine uses; built by the control plane. The executors hold their own `WorkerServices`."""

    renderer: Renderer
    executor: Executor
    """Runs runnable tasks (`runner.engine.invocation` contract)."""
    recorder: Recorder
    coordinator: Coordinator
    storage_for: Callable[[ExecutionRequest], Storage]
    kv: KeyValue
    masker: Masker
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    globals: dict[str, Any] = field(default_factory=dict)
    envs: dict[str, str] = field(default_factory=dict)
    """`{{ envs.x }}`: ENV_-prefixed environment variables, prefix stripped and lower-cased."""
    max_log_lines: int = 10_000
    inline_executor: Executor | None = None
    """Runs the tasks that only compute (`Task.runs_inline`) on the engine's thread; `executor` when None."""
    ui_url: str | None = None
    """The web UI's public address (`http.public_url`): the link notification tasks give to an execution."""
