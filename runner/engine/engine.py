"""The execution engine: walks one execution's task tree (KESTRA_SPEC §5-12).

Flowable tasks (Sequential, Parallel, If, Switch, ForEach, Dag, …) are decided here, in
`runner.flowables`; runnable tasks are rendered here and handed to an executor. The engine never opens the
database: every transition goes to the `Recorder`, which the control plane implements (and which alone writes
SQLite). One `Engine` serves many executions; `run()` drives one execution on the calling thread.

End-of-flow order: tasks -> (on failure) errors -> finally (still RUNNING) -> terminal state ->
afterExecution (sees the final state; cannot change it).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.api import RunContext, TaskFailed, TaskKilled
from runner.engine.executors import InlineExecutor
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
from runner.engine.retry import RetryPolicy, seconds_of
from runner.expressions.renderer import RUNTIME, RenderRuntime
from runner.plugin import Task
from runner.states import State, combine
from runner.truthy import truthy

log = logging.getLogger("gitsync.engine")

KILL_GRACE_SECONDS = 10.0
_POLL = 0.05
INLINE_TASK_TYPES = frozenset(
    {
        "io.kestra.plugin.core.debug.Return",
        "io.kestra.plugin.core.debug.Echo",
        "io.kestra.plugin.core.log.Log",
        "io.kestra.plugin.core.execution.Fail",
        "io.kestra.plugin.core.execution.Exit",
        "io.kestra.plugin.core.execution.Labels",
        "io.kestra.plugin.core.output.OutputValues",
    }
)
"""Built-in tasks that only compute (no process, no file, no network, no working directory): they run on the
engine's thread, without a hop to a worker, and get no working directory created for them."""
_INLINE = InlineExecutor()


class ExitSignal(Exception):
    """Raised through the tree when a task ends the execution early (the Exit task)."""

    def __init__(self, state: State) -> None:
        super().__init__(state.value)
        self.state = state


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

    def child(self, task_run_id: str, task_id: str, **changes: Any) -> Scope:
        entry = {
            "taskrun": {
                "id": task_run_id,
                "value": self.value,  # the enclosing task run's own value (Kestra's `parents[n].taskrun.value`)
                "iteration": self.iteration,
            },
            "task": {"id": task_id},
        }
        return replace(self, parent_id=task_run_id, parent_task_id=task_id, parents=(entry, *self.parents), **changes)


class Engine:
    def __init__(self, services: Services) -> None:
        self.services = services

    def run(self, request: ExecutionRequest, cancelled: threading.Event | None = None) -> ExecutionOutcome:
        return _Execution(self.services, request, cancelled or threading.Event()).run()


class _Execution:
    """The state of one execution while it runs (threads of Parallel branches share it)."""

    def __init__(self, services: Services, request: ExecutionRequest, cancelled: threading.Event) -> None:
        self.s = services
        self.request = request
        self.flow = request.flow
        self.cancelled = cancelled
        self.outputs: dict[str, Any] = {}
        self.task_states: dict[str, Any] = {}
        self.labels = {**(self.flow.labels or {}), **request.labels}
        self.lock = threading.RLock()
        self.storage = services.storage_for(request)
        self.started = utcnow()
        self.state = State.RUNNING
        self.error: str | None = None
        self.root = services.data_dir / "executions" / request.id / "work"
        self._ids = 0
        self._dumps: dict[int, dict[str, Any]] = {}
        self._base = self._base_variables()

    # -- the execution ------------------------------------------------------------------------------------------

    def run(self) -> ExecutionOutcome:
        self.s.recorder.execution(self.request.id, State.RUNNING, started_at=self.started)
        state = State.SUCCESS
        exit_state: State | None = None
        try:
            state = self.run_list(self.flow.tasks, Scope())
            if state.is_failure and self.flow.errors and not self.cancelled.is_set():
                self.run_list(self.flow.errors, Scope())
        except ExitSignal as signal:
            exit_state = signal.state
        if self.flow.finally_:
            try:
                state = combine([state, self.run_list(self.flow.finally_, Scope())])
            except ExitSignal as signal:
                exit_state = signal.state
        if exit_state is not None:
            state = exit_state
        elif self.cancelled.is_set():
            state = State.KILLED
        outputs = self._flow_outputs() if not state.is_failure else {}
        if outputs is None:
            state, outputs = State.FAILED, {}
        self.state = state
        self.s.recorder.execution(
            self.request.id, state, ended_at=utcnow(), outputs=outputs, labels=self.labels, error=self.error
        )
        if self.flow.afterExecution:
            with contextlib.suppress(ExitSignal):
                self.run_list(self.flow.afterExecution, Scope())
        return ExecutionOutcome(state, outputs, self.labels, self.error, self.outputs)

    def run_list(self, tasks: Sequence[Any] | None, scope: Scope) -> State:
        """Run tasks one after the other; stop at the first failure."""
        states: list[State] = []
        for task in tasks or []:
            if self.cancelled.is_set():
                return State.KILLED
            state = self.run_task(task, scope)
            states.append(state)
            if state.is_failure:
                break
        return combine(states)

    def run_task(self, task: Task, scope: Scope) -> State:
        """One task in a scope: skipped, decided (flowable) or run (runnable); allowFailure/allowWarning applied."""
        if task.disabled:
            return State.SUCCESS
        state = self._run_flowable(task, scope) if task.flowable else self._run_runnable(task, scope)
        absorbs = task.allowFailure or getattr(type(task), "absorbs_failure", False)
        if state.is_failure and absorbs and state != State.KILLED:
            state = State.WARNING
        if state == State.WARNING and task.allowWarning:
            state = State.SUCCESS
        return state

    # -- flowables ----------------------------------------------------------------------------------------------

    def _run_flowable(self, task: Task, scope: Scope) -> State:
        from runner.engine.flowables import HANDLERS

        record = self._new_record(task, scope, attempt=1)
        if not self._should_run(task, scope, record):
            return State.SKIPPED
        self._record(record, State.RUNNING, started_at=utcnow())
        handler = HANDLERS.get(type(task).type_name)
        try:
            if handler is None:
                raise TaskFailed(f"flowable type {type(task).type_name} is not supported by this engine")
            outcome = handler(self, task, scope, record)
            state, outputs = (outcome, {}) if isinstance(outcome, State) else outcome
        except ExitSignal:
            self._record(record, State.SUCCESS, ended_at=utcnow())
            raise
        except TaskFailed as exc:
            state, outputs = (State.KILLED if isinstance(exc, TaskKilled) else State.FAILED), exc.outputs
            record.error = self._fail_message(task, exc.message)
            self._task_log(record, "ERROR", record.error)
        inner = scope.child(record.id, task.id)
        if state.is_failure and getattr(task, "errors", None) and not self.cancelled.is_set():
            self.run_list(task.errors, inner)
        if getattr(task, "finally_", None):
            state = combine([state, self.run_list(task.finally_, inner)])
        if outputs:
            self._store_outputs(task.id, scope, outputs)
        self._record(record, state, ended_at=utcnow(), outputs=outputs)
        return state

    # -- runnables ----------------------------------------------------------------------------------------------

    def _run_runnable(self, task: Task, scope: Scope) -> State:
        first = self._new_record(task, scope, attempt=1)
        if not self._should_run(task, scope, first):
            return State.SKIPPED
        policy = RetryPolicy.of(task)
        started = time.monotonic()
        attempt = 1
        record = first
        while True:
            with self._batch(task):
                state = self._attempt(task, scope, record)
            if not state.is_failure or state == State.KILLED or self.cancelled.is_set():
                break
            delay = policy.delay_before(attempt + 1, time.monotonic() - started)
            if delay is None:
                break
            self._record(record, State.RETRIED)
            self._task_log(record, "WARN", f"attempt {attempt} failed; retrying in {delay:.1f}s")
            if self.cancelled.wait(delay):
                return State.KILLED
            attempt += 1
            record = self._new_record(task, scope, attempt=attempt, run_id=None)
        if state == State.SUCCESS and attempt > 1 and policy.warning_on_retry:
            state = State.WARNING
            self._record(record, state)
        return state

    def _attempt(self, task: Task, scope: Scope, record: TaskRunRecord) -> State:
        self._record(record, State.RUNNING, started_at=utcnow())
        variables = self.variables(task, scope, record)
        try:
            rendered = self.render_task(task, variables)
        except TaskFailed as exc:
            return self._finish_failed(record, task, scope, exc)
        inline = _runs_inline(task)
        ctx = self._context(rendered, scope, record, make_workdir=not inline)
        timeout = seconds_of(rendered.timeout)
        executor = _INLINE if inline else self.s.executor
        future = executor.submit(lambda: rendered.run(ctx))  # type: ignore[attr-defined]
        try:
            outputs = self._wait(future, ctx, timeout, task)
        except ExitSignal:
            raise
        except TaskFailed as exc:
            self._apply_labels(ctx)
            return self._finish_failed(record, task, scope, exc)
        except Exception as exc:
            exit_state = _exit_state(exc)
            if exit_state is not None:
                self._record(record, State.SUCCESS, ended_at=utcnow())
                raise ExitSignal(exit_state) from None
            log.exception("task %s crashed", task.id)
            return self._finish_failed(record, task, scope, TaskFailed(f"{type(exc).__name__}: {exc}"))
        self._apply_labels(ctx)
        outputs = self.s.masker.mask_value(outputs or {})
        self._store_outputs(task.id, scope, outputs)
        state = State.WARNING if ctx.warnings else State.SUCCESS
        self._record(record, state, ended_at=utcnow(), outputs=outputs)
        return state

    def _batch(self, task: Task) -> contextlib.AbstractContextManager[Any]:
        """One transaction for the transitions and logs of a task that runs inline."""
        return self.s.recorder.batch() if _runs_inline(task) else contextlib.nullcontext()

    def _wait(self, future: Future[dict[str, Any]], ctx: RunContext, timeout: float | None, task: Task) -> Any:
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            if self.cancelled.is_set() and not ctx.cancelled.is_set():
                ctx.cancelled.set()
            if deadline is not None and time.monotonic() >= deadline and not ctx.cancelled.is_set():
                ctx.cancelled.set()
                self._task_log_ctx(ctx, "ERROR", f"timed out after {timeout:g}s; stopping the task")
                with contextlib.suppress(Exception):
                    future.result(timeout=KILL_GRACE_SECONDS)
                raise TaskKilled(f"task {task.id!r} timed out after {timeout:g}s")
            try:
                result = future.result(timeout=_POLL)
            except FutureTimeout:
                continue
            if ctx.cancelled.is_set() and self.cancelled.is_set():
                raise TaskKilled(f"task {task.id!r} was killed")
            return result

    def _finish_failed(self, record: TaskRunRecord, task: Task, scope: Scope, exc: TaskFailed) -> State:
        state = State.KILLED if isinstance(exc, TaskKilled) and self.cancelled.is_set() else State.FAILED
        message = self._fail_message(task, exc.message)
        self._task_log(record, "ERROR", message)
        outputs = self.s.masker.mask_value(exc.outputs or {})
        if outputs:
            self._store_outputs(task.id, scope, outputs)
        record.error = message
        self._record(record, state, ended_at=utcnow(), outputs=outputs)
        with self.lock:
            if self.error is None:
                self.error = message
        return state

    def _fail_message(self, task: Task, message: str) -> str:
        return self.s.masker.mask(f"task '{task.id}': {message}")

    # -- rendering and context ----------------------------------------------------------------------------------

    def render_task(self, task: Task, variables: Mapping[str, Any]) -> Task:
        """A copy of the task with every property rendered, validated again (an expression may become an int)."""
        cls = type(task)
        raw = self._dumps.get(id(task))
        if raw is None:
            raw = task.model_dump(by_alias=True, exclude_none=True, exclude={"runIf"})
            raw = {k: v for k, v in raw.items() if k not in ("errors", "finally")}
            self._dumps[id(task)] = raw
        try:
            rendered = self.s.renderer.render_value(raw, variables)
        except Exception as exc:
            raise TaskFailed(_render_message(exc)) from None
        try:
            return cls.model_validate(rendered)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise TaskFailed(f"rendered properties are invalid: {problems}") from None

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

    def _should_run(self, task: Task, scope: Scope, record: TaskRunRecord) -> bool:
        if task.runIf in (True, "true", None):
            return True
        variables = self.variables(task, scope, record)
        try:
            verdict = truthy(self.evaluate(task.runIf, variables))
        except TaskFailed as exc:
            record.error = self._fail_message(task, f"runIf: {exc.message}")
            self._record(record, State.FAILED, started_at=utcnow(), ended_at=utcnow())
            raise
        if not verdict:
            now = utcnow()
            self._record(record, State.SKIPPED, started_at=now, ended_at=now)
            with self.lock:
                self.task_states[task.id] = {"state": State.SKIPPED.value}
        return verdict

    def _context(self, task: Task, scope: Scope, record: TaskRunRecord, make_workdir: bool = True) -> RunContext:
        workdir = scope.workdir or (self.root / record.id)
        if make_workdir:
            workdir.mkdir(parents=True, exist_ok=True)
        return RunContext(
            execution_id=self.request.id,
            namespace=self.flow.namespace,
            flow_id=self.flow.id,
            flow_revision=self.request.revision,
            task_id=task.id,
            task_run_id=record.id,
            attempt=record.attempt,
            workdir=workdir,
            logger=_TaskLogger(self, record),
            storage=self.storage.for_task(task.id) if hasattr(self.storage, "for_task") else self.storage,
            kv=self.s.kv,
            env=dict(self.s.env),
            secrets=list(self.s.masker.values()),
            value=scope.value,
            iteration=scope.iteration,
            timeout_seconds=seconds_of(task.timeout),
            labels=dict(self.labels),
            allow_docker_fallback=self.s.allow_docker_fallback,
        )

    def _apply_labels(self, ctx: RunContext) -> None:
        if ctx.new_labels:
            with self.lock:
                self.labels.update({str(k): str(v) for k, v in ctx.new_labels.items()})
            self.s.recorder.execution(self.request.id, State.RUNNING, labels=self.labels)

    def _base_variables(self) -> dict[str, Any]:
        flow = self.flow
        request = self.request
        return {
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": request.revision},
            "execution": {
                "id": request.id,
                "startDate": self.started,
                "originalId": request.original_id or request.id,
                "state": State.RUNNING.value,
            },
            "inputs": request.inputs,
            "vars": flow.variables or {},
            "labels": self.labels,
            "trigger": request.trigger or {},
            "outputs": self.outputs,
            "tasks": self.task_states,
            "envs": self.s.envs,
            "globals": self.s.globals,
            RUNTIME: RenderRuntime(kv=self.s.kv, storage=self.storage),
        }

    def variables(self, task: Task, scope: Scope, record: TaskRunRecord) -> dict[str, Any]:
        variables = dict(self._base)
        variables["execution"] = {**variables["execution"], "state": self.state.value}
        variables["task"] = {"id": task.id, "type": type(task).type_name}
        variables["taskrun"] = {
            "id": record.id,
            "startDate": record.started_at or utcnow(),
            "attemptsCount": record.attempt - 1,  # Kestra counts the attempts before this one
            "parentId": scope.parent_id,
            "value": scope.value,
            "iteration": scope.iteration,
        }
        if scope.parents:
            variables["parent"] = scope.parents[0]
            variables["parents"] = list(scope.parents)
        workdir = scope.workdir or (self.root / record.id)
        variables["workingDir"] = str(workdir)
        variables["outputDir"] = str(workdir)
        return variables

    def flow_variables(self) -> dict[str, Any]:
        variables = dict(self._base)
        variables["execution"] = {**variables["execution"], "state": self.state.value}
        return variables

    # -- outputs, records, logs ---------------------------------------------------------------------------------

    def _store_outputs(self, task_id: str, scope: Scope, outputs: dict[str, Any]) -> None:
        with self.lock:
            if not scope.loop_values:
                self.outputs[task_id] = outputs
                return
            node = self.outputs.setdefault(task_id, {})
            for value in scope.loop_values[:-1]:
                node = node.setdefault(value, {})
            node[scope.loop_values[-1]] = outputs

    def _flow_outputs(self) -> dict[str, Any] | None:
        """The flow's outputs, or None when one fails to render (which fails the execution, like Kestra)."""
        out: dict[str, Any] = {}
        variables = self.flow_variables()
        for output in self.flow.outputs or []:
            try:
                value = self.evaluate(output.value, variables) if isinstance(output.value, str) else output.value
            except TaskFailed as exc:
                self.error = self.error or f"flow output '{output.id}': {exc.message}"
                return None
            out[output.id] = self.s.masker.mask_value(value)
        return out

    def new_id(self) -> str:
        with self.lock:
            self._ids += 1
            return f"{self.request.id}-{self._ids:04d}"

    def _new_record(self, task: Task, scope: Scope, attempt: int, run_id: str | None = None) -> TaskRunRecord:
        return TaskRunRecord(
            id=run_id or self.new_id(),
            execution_id=self.request.id,
            task_id=task.id,
            task_type=type(task).type_name,
            parent_id=scope.parent_id,
            value=scope.value,
            iteration=scope.iteration,
            attempt=attempt,
            state=State.CREATED,
        )

    def _record(self, record: TaskRunRecord, state: State, **changes: Any) -> None:
        record.state = state
        for key, value in changes.items():
            setattr(record, key, value)
        if state.is_terminal:
            with self.lock:
                self.task_states[record.task_id] = {"state": state.value}
        self.s.recorder.task_run(record)

    def _task_log(self, record: TaskRunRecord, level: str, message: str) -> None:
        self.s.recorder.logs([LogLine(self.request.id, record.id, utcnow(), level, self.s.masker.mask(message))])

    def _task_log_ctx(self, ctx: RunContext, level: str, message: str) -> None:
        ctx.logger.log(level, message)


class _TaskLogger:
    """Logs of one task run: masked, buffered, bounded (a task that prints gigabytes is cut, not the daemon)."""

    def __init__(self, run: _Execution, record: TaskRunRecord) -> None:
        self.run = run
        self.record = record
        self.count = 0
        self.lock = threading.Lock()

    def log(self, level: str, message: str) -> None:
        with self.lock:
            self.count += 1
            if self.count > self.run.s.max_log_lines:
                if self.count == self.run.s.max_log_lines + 1:
                    message = f"log limit of {self.run.s.max_log_lines} lines reached; further lines are not stored"
                    level = "WARN"
                else:
                    return
        text = self.run.s.masker.mask(str(message))
        self.run.s.recorder.logs([LogLine(self.run.request.id, self.record.id, utcnow(), level.upper(), text)])

    def trace(self, message: str) -> None:
        self.log("TRACE", message)

    def debug(self, message: str) -> None:
        self.log("DEBUG", message)

    def info(self, message: str) -> None:
        self.log("INFO", message)

    def warn(self, message: str) -> None:
        self.log("WARN", message)

    def error(self, message: str) -> None:
        self.log("ERROR", message)


def _runs_inline(task: Task) -> bool:
    return type(task).type_name in INLINE_TASK_TYPES


def _render_message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


def _exit_state(exc: Exception) -> State | None:
    """The Exit task raises an exception carrying the state the execution ends in."""
    state = getattr(exc, "state", None)
    if state is None or type(exc).__name__ not in ("ExitExecution", "ExitSignal"):
        return None
    try:
        return State(str(getattr(state, "value", state)).upper())
    except ValueError:
        return None


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
    "truthy",
]
