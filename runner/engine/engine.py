"""The execution engine: walks one execution's task tree (KESTRA_SPEC §5-12).

Flowable tasks (Sequential, Parallel, If, Switch, ForEach, Dag, …) decide themselves (`decide(ctx, scope,
record)` on their class, with this module's `_Execution` as the `FlowableContext`); runnable tasks are rendered
and handed to an executor as plain data (`runner.engine.runnables`, `runner.engine.invocation`). The engine
never opens the database: every transition goes to the `Recorder`, which the control plane implements (and
which alone writes SQLite). One `Engine` serves many executions; `run()` drives one execution on the calling
thread.

End-of-flow order: tasks -> (on failure) errors -> finally (still RUNNING) -> terminal state ->
afterExecution (sees the final state; cannot change it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.api import NamespaceFiles, Storage, TaskFailed, TaskKilled
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.data import ExecutionData, Transitions, typed_output
from runner.engine.properties import TaskProperties, copied
from runner.engine.records import (
    Coordinator,
    ExecutionOutcome,
    ExecutionRequest,
    LogLine,
    Recorder,
    Services,
    SubflowResult,
    TaskRunRecord,
    utcnow,
)
from runner.engine.replay import Replay
from runner.engine.retry import creates_new_execution
from runner.engine.runnables import ExitSignal, RunnableRunner, absorbs_failure, settle
from runner.engine.sla import SlaWatch
from runner.flow import Flow
from runner.masking import Masker
from runner.plugin import Task
from runner.states import State, combine
from runner.truthy import truthy
from runner.validate.validator import MAX_TASK_DEPTH


class Engine:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.properties = TaskProperties()
        """Every execution's tasks' properties, derived once per task object (revisions are shared)."""

    def run(self, request: ExecutionRequest, cancelled: threading.Event | None = None) -> ExecutionOutcome:
        return _Execution(self.services, request, cancelled or threading.Event(), self.properties).run()


class _Execution:
    """One execution while it runs: walks the tree, decides flowables, and is their `FlowableContext`."""

    def __init__(
        self,
        services: Services,
        request: ExecutionRequest,
        cancelled: threading.Event,
        properties: TaskProperties | None = None,
    ) -> None:
        self.s = services
        self.request = request
        self.flow = request.flow
        self._storage = services.storage_for(request)
        self.data = ExecutionData(services, request, self._storage)
        self.namespace_files: NamespaceFiles | None = self.data.namespace_files  # FlowableContext's
        self.coordinator = services.coordinator  # FlowableContext's
        self.t = Transitions(services, self.data)
        self.sla = _sla_watch(services, self.data, self.t, cancelled)
        self._cancelled = self.sla.stop  # set by a kill, or by an SLA violation that ends the execution
        self._properties = properties or TaskProperties()
        self.runnables = RunnableRunner(
            services, self.data, self.t, self._cancelled, self.render_properties, self._finish_failed
        )
        self.replay = Replay(request.replay, self.data, self.t)

    # -- the execution ------------------------------------------------------------------------------------------

    def run(self) -> ExecutionOutcome:
        data = self.data
        self.s.recorder.execution(self.request.id, State.RUNNING, started_at=data.started, labels=data.labels)
        state = State.SUCCESS
        exit_state: State | None = None
        self.sla.start()
        self._check_assertions()
        try:
            state = self.run_list(self.flow.tasks, Scope())
            if state.is_failure and self.flow.errors and not self._cancelled.is_set():
                self.run_list(self.flow.errors, Scope())
        except ExitSignal as signal:
            exit_state = signal.state
        if self.flow.finally_:
            try:
                state = combine([state, self.run_list(self.flow.finally_, Scope())])
            except ExitSignal as signal:
                exit_state = signal.state
        self.sla.finish()
        if exit_state is not None:
            state = exit_state
        elif self.sla.ending is not None:
            state, data.error = self.sla.ending
        elif self._cancelled.is_set():
            state = State.KILLED
        outputs = flow_outputs(self.flow, self.data, self.render, self.s.masker) if not state.is_failure else {}
        if outputs is None:
            state, outputs = State.FAILED, {}
        data.state = state
        data.error = data.ending_error(state)
        self.s.recorder.execution(
            self.request.id, state, ended_at=utcnow(), outputs=outputs, labels=data.labels, error=data.error
        )
        if self.flow.afterExecution:
            with contextlib.suppress(ExitSignal):
                self.run_list(self.flow.afterExecution, Scope())
        retry = _new_execution_retry(self.flow, data, self.runnables.retries, state)
        return ExecutionOutcome(state, outputs, data.labels, data.error, data.outputs, retry)

    def run_list(self, tasks: Sequence[Any] | None, scope: Scope) -> State:
        states: list[State] = []
        for task in tasks or []:
            if self._cancelled.is_set():
                return State.KILLED
            state = self.run_task(task, scope)
            states.append(state)
            if state.is_failure:
                break
        return combine(states)

    def run_task(self, task: Task, scope: Scope) -> State:
        """One task in a scope: skipped, decided (flowable) or run (runnable); its state once allowFailure and
        allowWarning applied (both `settle` it before its run is recorded)."""
        if task.disabled:
            return State.SUCCESS
        found = self.replay.find(task, scope)
        if isinstance(found, State):  # carried over, done, from the execution this one replays
            return found
        record = found or self.data.new_record(task, scope, attempt=1)
        should_run = self._should_run(task, scope, record)
        if should_run is None:
            state = State.FAILED  # its runIf did not render
        elif not should_run:
            state = State.SKIPPED
        elif task.flowable and getattr(type(task), "retried_as_a_task", False):  # Subflow: attempts, as Kestra
            state = self.runnables.run(task, scope, record, lambda attempt: self._decide(task, scope, attempt, False))
        elif task.flowable:
            state = self._decide(task, scope, record)
        else:
            state = self.runnables.run(task, scope, record)
        if absorbs_failure(task) and not state.is_failure:  # its failure, if any, was allowed (`settle`)
            self.data.forgive(record.id)
        self._check_assertions()
        return state

    def _should_run(self, task: Task, scope: Scope, record: TaskRunRecord) -> bool | None:
        """Whether the task runs (its runIf); None when the runIf does not render, which fails the task (Kestra)."""
        if task.runIf in (True, "true", None):
            return True
        try:
            verdict = truthy(self.evaluate(task.runIf, self.variables(task, scope, record)))
        except TaskFailed as exc:
            record.error = self.t.fail_message(task, f"runIf: {exc.message}")
            self.t.log(record, "ERROR", record.error)
            self.data.note_failure(record.id, record.error)
            self.t.record(record, State.FAILED, started_at=utcnow(), ended_at=utcnow())
            return None
        if not verdict:
            self.t.skipped(record)
            with self.data.lock:
                self.data.task_states[task.id] = {"state": State.SKIPPED.value}
        return verdict

    # -- flowables ----------------------------------------------------------------------------------------------

    def _decide(self, task: Task, scope: Scope, record: TaskRunRecord, settled: bool = True) -> State:
        self.t.record(record, State.RUNNING, started_at=utcnow())
        if task.retry is not None:  # retries the runnables inside it that have no retry of their own
            scope = replace(scope, retry=task.retry)
        decide = getattr(task, "decide", None)
        try:
            if len(scope.parents) + 1 >= MAX_TASK_DEPTH:  # its tasks would nest deeper than validate allows
                raise TaskFailed(f"tasks nest deeper than {MAX_TASK_DEPTH} levels, the most a flow may nest")
            if decide is None:
                raise TaskFailed(
                    f"flowable type {type(task).type_name} has no decide(ctx, scope, record) method, "
                    "so this engine cannot run it"
                )
            context: FlowableContext = self  # mypy checks that _Execution keeps the protocol
            outcome: Outcome = decide(context, scope, record)
            state, outputs = (outcome, {}) if isinstance(outcome, State) else outcome
        except ExitSignal:
            self.t.record(record, State.SUCCESS, ended_at=utcnow())
            raise
        except TaskFailed as exc:
            state, outputs = (State.KILLED if isinstance(exc, TaskKilled) else State.FAILED), exc.outputs
            record.error = self.t.fail_message(task, exc.message)
            self.t.log(record, "ERROR", record.error)
            self.data.note_failure(record.id, record.error)
        inner = scope.child(record.id, task.id)
        errors, finally_ = getattr(task, "errors", None), getattr(task, "finally_", None)
        if state.is_failure and errors and not self._cancelled.is_set():
            self.run_list(errors, inner)
        if finally_:
            state = combine([state, self.run_list(finally_, inner)])
        if outputs:
            self.data.store_outputs(task.id, scope, outputs)
        state = settle(task, state) if settled else state  # else its retries settle it, after the last attempt
        self.t.record(record, state, ended_at=utcnow(), outputs=outputs)
        return state

    # -- FlowableContext ----------------------------------------------------------------------------------------

    @property
    def cancelled(self) -> threading.Event:
        return self._cancelled

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def labels(self) -> Mapping[str, str]:
        return self.data.labels

    def variables(self, task: Task, scope: Scope, record: TaskRunRecord) -> dict[str, Any]:
        return self.data.variables(task, scope, record)

    def evaluate(self, expression: Any, variables: Mapping[str, Any]) -> Any:
        if not isinstance(expression, str):
            return expression
        try:
            return self.s.renderer.evaluate(expression, variables)
        except Exception as exc:
            raise TaskFailed(_render_message(exc)) from None

    def render(self, value: Any, variables: Mapping[str, Any]) -> Any:
        try:
            return self.s.renderer.render_value(value, variables)
        except Exception as exc:
            raise TaskFailed(_render_message(exc)) from None

    def render_properties(self, task: Task, variables: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        """The task's properties (as YAML gave them, with `type`), every `{{ }}` rendered; not validated.
        `variables` is called only when a property holds a template."""
        raw, templated = self._properties.of(task)
        if not templated:
            fresh: dict[str, Any] = copied(raw)
            return fresh
        rendered: dict[str, Any] = self.render(raw, variables())
        return rendered

    def render_task(self, task: Task, variables: Mapping[str, Any]) -> Task:
        """A copy of the task with every property rendered, validated again (an expression may become an int)."""
        rendered = self.render_properties(task, lambda: variables)
        try:
            return type(task).model_validate(rendered)
        except ValidationError as exc:
            raise TaskFailed(f"rendered properties are invalid: {validation_problems(exc)}") from None

    def working_directory(self, record: TaskRunRecord) -> Path:
        workdir = self.data.workdir(Scope(), record)
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir

    def pause(self, record: TaskRunRecord, timeout_seconds: float | None) -> dict[str, Any] | None:
        recorder = self.s.recorder
        record.state = State.PAUSED
        recorder.task_run(record)
        recorder.execution(self.request.id, State.PAUSED)
        answer = self.s.coordinator.wait_for_resume(self.request.id, _until(self._cancelled, timeout_seconds))
        if answer is None:
            return None
        record.state = State.RUNNING
        record.started_at = record.started_at or utcnow()
        recorder.task_run(record)
        recorder.execution(self.request.id, State.RUNNING)
        return answer

    def subflow(self, task: Task, inputs: dict[str, Any], labels: dict[str, str]) -> SubflowResult:
        return self.s.coordinator.subflow(self.request, task, inputs, labels, self._cancelled)

    def publish(self, task: Task, scope: Scope, outputs: dict[str, Any]) -> None:
        self.data.store_outputs(task.id, scope, self.s.masker.mask_value(outputs))

    # -- failures and flow outputs ------------------------------------------------------------------------------

    def _finish_failed(self, record: TaskRunRecord, task: Task, scope: Scope, exc: TaskFailed) -> State:
        state = State.KILLED if isinstance(exc, TaskKilled) and self._cancelled.is_set() else State.FAILED
        message = self.t.fail_message(task, exc.message)
        self.t.log(record, "ERROR", message)
        outputs = self.s.masker.mask_value(exc.outputs or {})
        if outputs:
            self.data.store_outputs(task.id, scope, outputs)
        record.error = message
        self.t.record(record, state, ended_at=utcnow(), outputs=outputs)
        return state

    def _check_assertions(self) -> None:
        if self.flow.sla:
            variables = self.data.flow_variables()
            self.sla.check_assertions(lambda expression: self.evaluate(expression, variables))


def _new_execution_retry(flow: Flow, data: ExecutionData, retries: Mapping[str, Any], state: State) -> Any:
    """The CREATE_NEW_EXECUTION retry of what failed it: the first standing runnable failure's (`retries`: the
    runnables'), else the flow's."""
    if state != State.FAILED:
        return None
    standing = data.standing_failures()
    with data.lock:
        retry = retries.get(standing[0], flow.retry) if standing else flow.retry
    return retry if creates_new_execution(retry) else None


def flow_outputs(
    flow: Flow, data: ExecutionData, render: Callable[[Any, Mapping[str, Any]], Any], masker: Masker
) -> dict[str, Any] | None:
    """The flow's outputs, typed, or None when one fails to render or fit its type (which fails the execution,
    like Kestra; `data.error` says why)."""
    out: dict[str, Any] = {}
    variables = data.flow_variables()
    for output in flow.outputs or []:
        try:
            value = typed_output(output.type, render(output.value, variables))
        except TaskFailed as exc:
            data.error = f"flow output '{output.id}': {exc.message}"
            return None
        except ValueError as exc:
            data.error = masker.mask(f"flow output '{output.id}' of type {output.type}: {exc}")
            return None
        out[output.id] = masker.mask_value(value)
    return out


def _sla_watch(services: Services, data: ExecutionData, t: Transitions, cancelled: threading.Event) -> SlaWatch:
    """The execution's SLA watch: its logs are the execution's own (no task run), its labels change the run's."""
    request = data.request

    def log(level: str, message: str) -> None:
        services.recorder.logs([LogLine(request.id, None, utcnow(), level, services.masker.mask(message))])

    def add_labels(labels: Mapping[str, str]) -> None:
        data.add_labels(labels)
        t.labels_changed()

    return SlaWatch(request.flow, request.created_at, cancelled, log, add_labels)


def validation_problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))


def _until(cancelled: threading.Event, timeout: float | None) -> threading.Event:
    """An event set when `cancelled` is, or when `timeout` seconds have passed."""
    if timeout is None:
        return cancelled
    done = threading.Event()

    def watch() -> None:
        cancelled.wait(timeout)
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    return done


def _render_message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


__all__ = [
    "Coordinator",
    "Engine",
    "ExecutionOutcome",
    "ExecutionRequest",
    "LogLine",
    "Recorder",
    "Scope",
    "Services",
    "SubflowResult",
    "TaskRunRecord",
]
