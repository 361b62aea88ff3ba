"""What a flowable task sees of the running execution: the `FlowableContext` protocol, `Scope` and `Outcome`.

A flowable class (Sequential, If, ForEach, … or a third-party one) decides itself:

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:

It gets the execution through this protocol only, so plugins never reach into the engine's internals.
Children run through `ctx.run_task` / `ctx.run_list`, so every rule of the engine (runIf, retries,
allowFailure, errors/finally) applies inside flowables too. `run_concurrently` runs branches on threads of
their own (bounded by the task's concurrency), never on the executor's workers, so a flowable waiting for
children cannot starve the runnables it waits for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from runner.api import NamespaceFiles, Storage
from runner.engine.records import Coordinator, LogLine, SubflowResult, TaskRunRecord
from runner.plugin import Task
from runner.states import State

Outcome = State | tuple[State, dict[str, Any]]
"""What `decide` returns: the flowable's state, or its state and its outputs."""


@dataclass(frozen=True)
class Scope:
    """Where a task stands: its parent task run, loop values, working directory."""

    parent_id: str | None = None
    parent_task_id: str | None = None
    loop_values: tuple[str, ...] = ()
    value: Any = None
    iteration: int | None = None
    workdir: Path | None = None
    parents: tuple[dict[str, Any], ...] = ()
    retry: Any = None
    """The `retry` of the nearest enclosing flowable that has one: its runnable descendants without a `retry` of
    their own are retried by it (as in Kestra)."""
    item: Mapping[str, Any] | None = None
    """The iteration of the nearest enclosing Loop (`{{ item.value }}`, `item.index`, `item.key`), for every task
    inside it, however deep."""

    def child(self, task_run_id: str, task_id: str, **changes: Any) -> Scope:
        """The scope of the children of task run `task_run_id` (loop values, workdir… changed by `changes`)."""
        entry = {
            "taskrun": {
                "id": task_run_id,
                "value": self.value,  # the enclosing task run's own value (Kestra's `parents[n].taskrun.value`)
                "iteration": self.iteration,
            },
            "task": {"id": task_id},
        }
        return replace(self, parent_id=task_run_id, parent_task_id=task_id, parents=(entry, *self.parents), **changes)


class FlowableContext(Protocol):
    """The running execution, as a flowable's `decide` uses it. Every method may raise `TaskFailed` (a render
    error, a child that cannot start), which fails the flowable with that message."""

    @property
    def cancelled(self) -> threading.Event:
        """Set when the execution is killed; long waits use `cancelled.wait(seconds)`."""
        ...

    @property
    def storage(self) -> Storage:
        """The execution's file storage (kestra:/// URIs)."""
        ...

    @property
    def labels(self) -> Mapping[str, str]:
        """The execution's labels as they stand now."""
        ...

    @property
    def coordinator(self) -> Coordinator:
        """The control plane's side of what needs other executions (`execution.Resume`, `log.Fetch`)."""
        ...

    @property
    def namespace_files(self) -> NamespaceFiles | None:
        """The namespace files of the commit of the execution's revision (None: there is no commit)."""
        ...

    def run_list(self, tasks: Sequence[Any] | None, scope: Scope) -> State:
        """Run tasks one after the other in `scope`; stop at the first failure; the combined state."""
        ...

    def run_task(self, task: Task, scope: Scope) -> State:
        """Run one task in `scope` (skipped, decided or executed) and return its final state."""
        ...

    def variables(self, task: Task, scope: Scope, record: TaskRunRecord) -> dict[str, Any]:
        """The expression variables of `task` standing in `scope` as task run `record`."""
        ...

    def evaluate(self, expression: Any, variables: Mapping[str, Any]) -> Any:
        """The value of one expression (a non-string is returned as is)."""
        ...

    def render(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """`value` with every `{{ }}` inside it rendered."""
        ...

    def render_task(self, task: Task, variables: Mapping[str, Any]) -> Task:
        """A copy of `task` with every property rendered and validated again."""
        ...

    def working_directory(self, record: TaskRunRecord) -> Path:
        """The (created) working directory of task run `record`, for children to share."""
        ...

    def pause(self, record: TaskRunRecord, timeout_seconds: float | None) -> dict[str, Any] | None:
        """Mark the task run and the execution PAUSED and wait for a resume: its inputs, or None when the
        execution is killed or `timeout_seconds` pass first. On resume both are RUNNING again."""
        ...

    def subflow(self, task: Task, inputs: dict[str, Any], labels: dict[str, str]) -> SubflowResult:
        """Start an execution of the flow a (rendered) Subflow task names, and wait for it if it says so."""
        ...

    def publish(self, task: Task, scope: Scope, outputs: dict[str, Any]) -> None:
        """Outputs of a flowable that its children read (`outputs.<id>.<key>`) while it still runs: LoopUntil's
        `iterationCount`. What `decide` returns replaces them when it ends."""
        ...


class ExecutionReads(Protocol):
    """What expressions read of the running execution (`tasksWithState()`, `errorLogs()`): the engine's own
    record of it, in memory, never the database."""

    def task_runs(self) -> list[TaskRunRecord]:
        """Every task run so far (each attempt its own), oldest first, each in its current state."""
        ...

    def error_logs(self) -> list[LogLine]:
        """The execution's first ERROR log lines (masked), oldest first."""
        ...


Decide = Callable[[FlowableContext, Scope, TaskRunRecord], Outcome]


def run_concurrently(jobs: Sequence[Callable[[], State]], limit: int, stop_on_failure: bool = False) -> list[State]:
    """Run jobs on their own threads, `limit` at a time (0: all at once); in order on this thread when 1."""
    if not jobs:
        return []
    if limit == 1:
        states: list[State] = []
        for job in jobs:
            state = job()
            states.append(state)
            if stop_on_failure and state.is_failure:
                break
        return states
    workers = len(jobs) if limit <= 0 else min(limit, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="branch") as pool:
        return list(pool.map(lambda job: job(), jobs))
