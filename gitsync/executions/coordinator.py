"""`runner.engine.records.Coordinator`: what an execution needs of other executions (subflows) and of the outside
world (the resume of a paused execution)."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from gitsync.executions.control import ControlRequests
from gitsync.executions.creation import ExecutionFactory
from gitsync.executions.errors import RunError
from gitsync.state import executions as execution_rows
from gitsync.state import task_runs as task_run_rows
from runner.api import ExecutionView
from runner.engine.engine import ExecutionOutcome, ExecutionRequest, SubflowResult
from runner.engine.views import task_run_view
from runner.states import State


class Runs(Protocol):
    """Starting an execution on its own thread, or running it on the caller's."""

    def start_new(self, execution_id: str) -> None: ...
    def run(self, execution_id: str, cancelled: threading.Event | None = None) -> ExecutionOutcome | None: ...


class ExecutionCoordinator:
    """Subflows become executions of their own (with `parent`); resumes are requests read from the database."""

    def __init__(self, factory: ExecutionFactory, runs: Runs, control: ControlRequests) -> None:
        self.factory = factory
        self.runs = runs
        self.control = control

    def subflow(
        self,
        parent: ExecutionRequest,
        task: Any,
        inputs: dict[str, Any],
        labels: dict[str, str],
        cancelled: threading.Event,
    ) -> SubflowResult:
        """Create the child execution; with `wait`, run it on this thread and report how it ended."""
        uid = f"{task.namespace}.{task.flowId}"
        try:
            child = self.factory.create(
                uid,
                inputs,
                labels,
                trigger={"executionId": parent.id},
                parent=parent.id,
                revision=task.revision if isinstance(task.revision, int) else None,
                kind="subflow",
            )
        except RunError as exc:
            from runner.api import TaskFailed

            raise TaskFailed(str(exc)) from None
        if not task.wait:
            self.runs.start_new(child)
            return SubflowResult(child, State.CREATED, {})
        outcome = self.runs.run(child, cancelled)
        state = (
            outcome.state if outcome else State(execution_rows.execution_state(self.factory.store, child) or "UNKNOWN")
        )
        if outcome is None:
            return SubflowResult(child, state, {})
        row = execution_rows.get_execution(self.factory.store, child)
        declares = bool(row and self.factory.flow_of(row).outputs)
        return SubflowResult(child, state, outcome.outputs, outcome.task_outputs, declares)

    def wait_for_resume(self, execution_id: str, cancelled: threading.Event) -> dict[str, Any] | None:
        return self.control.wait_for_resume(execution_id, cancelled)

    def execution_view(self, execution_id: str) -> ExecutionView | None:
        """Another execution as recorded, for a notification task's `executionId` (a Flow trigger's upstream)."""
        store = self.factory.store
        row = execution_rows.get_execution(store, execution_id)
        if row is None:
            return None
        flow = self.factory.flow_of(row)
        runs = tuple(task_run_view(run) for run in task_run_rows.records(store, execution_id))
        return ExecutionView(
            id=row["id"],
            namespace=flow.namespace,
            flow_id=flow.id,
            state=row["state"],
            started_at=row["started_at"] or row["created_at"],
            ended_at=row["ended_at"],
            task_runs=runs,
            current=False,
        )
