"""Runnable tasks: attempts and retries, each attempt rendered into a `TaskInvocation` and handed to an executor.

The engine keeps what needs the execution (rendering, retries, timeouts, kills, outputs, labels); the executor
gets plain data and returns a `TaskResult`. Tasks that only compute (`Task.runs_inline`) go to the inline
executor, inside one recorder batch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from runner.api import TaskFailed, TaskKilled
from runner.engine.context import Scope
from runner.engine.data import ExecutionData, Transitions
from runner.engine.invocation import Executor, TaskHandle, TaskInvocation, TaskResult, storage_uris
from runner.engine.records import Services, TaskRunRecord, utcnow
from runner.engine.retry import RetryPolicy, creates_new_execution, effective_retry, rendered_seconds
from runner.engine.task_cache import CacheEntry, cache_entry, key_variables
from runner.engine.views import execution_view
from runner.plugin import Task
from runner.states import State

KILL_GRACE_SECONDS = 10.0
START_WAIT_SECONDS = 0.05
"""The longest a worker task's start is recorded after its hand-over when the worker has not said it started (a
Python task installing its dependencies first): a task is seen RUNNING soon whatever it does first."""
_POLL = 0.05
NOT_RETRIED = (
    "attempt {attempt} failed with a permanent error (trying again fails the same way), so it is not retried;"
    " add `retryPermanentErrors: true` to the task's retry to retry such errors too"
)


class ExitSignal(Exception):
    """Raised through the tree when a task ends the execution early (the Exit task)."""

    def __init__(self, state: State) -> None:
        super().__init__(state.value)
        self.state = state


def absorbs_failure(task: Task) -> bool:
    """Whether a failure of `task` does not fail its parent: `allowFailure: true`, or an AllowFailure task."""
    return bool(task.allowFailure or getattr(type(task), "absorbs_failure", False))


def settle(task: Task, state: State) -> State:
    """The state a task run ends in once its own allowances apply (as Kestra records it): a failure that
    allowFailure (or AllowFailure) allows is a WARNING, and a WARNING that allowWarning allows is a SUCCESS. A
    killed task stays KILLED."""
    if state.is_failure and state != State.KILLED and absorbs_failure(task):
        state = State.WARNING
    if state == State.WARNING and task.allowWarning:
        state = State.SUCCESS
    return state


Attempt = Callable[[TaskRunRecord], State]
RenderProperties = Callable[[Task, Callable[[], Mapping[str, Any]]], dict[str, Any]]
FinishFailed = Callable[[TaskRunRecord, Task, Scope, TaskFailed], State]


class RunnableRunner:
    """Runs one runnable task in a scope: its attempts (retry policy), each through an executor."""

    def __init__(
        self,
        services: Services,
        data: ExecutionData,
        transitions: Transitions,
        cancelled: threading.Event,
        render_properties: RenderProperties,
        finish_failed: FinishFailed,
    ) -> None:
        self.s = services
        self.data = data
        self.t = transitions
        self.cancelled = cancelled
        self.render_properties = render_properties
        self.finish_failed = finish_failed
        self.inline: Executor = services.inline_executor or services.executor
        self.retries: dict[str, Any] = {}
        """Task run id (first attempt) -> the CREATE_NEW_EXECUTION retry of each runnable that failed for good
        (None when the retry that applied to it, if any, retried it in this execution)."""

    def run(self, task: Task, scope: Scope, first: TaskRunRecord, run_attempt: Attempt | None = None) -> State:
        """The task's attempts, retried in this execution by the `retry` that applies to it unless that one
        creates a new execution instead (then the first failure ends it; `retries` keeps which retry). Each
        attempt is run by an executor, or by `run_attempt` (a flowable retried like a runnable: Subflow)."""
        cache = self.cache_entry(task, scope, first) if run_attempt is None else None
        if cache is not None and self.from_cache(task, scope, first, cache):
            return State.SUCCESS
        retry = effective_retry(task, scope.retry, self.data.request.flow.retry)
        new_execution = creates_new_execution(retry)
        policy = RetryPolicy() if new_execution else RetryPolicy.of(retry)
        started = time.monotonic()
        attempt = 1
        record = first
        inline = run_attempt is None and type(task).runs_inline
        while True:
            with self.s.recorder.batch() if inline else contextlib.nullcontext():
                if run_attempt is None:
                    state, permanent = self.attempt(task, scope, record, inline)
                else:
                    state, permanent = run_attempt(record), False
            if run_attempt is not None and record is not first:
                self.data.forgive(record.id)  # an attempt's failure stands as the task's (`first`), below
            if not state.is_failure or state == State.KILLED or self.cancelled.is_set():
                break
            delay = policy.delay_before(attempt + 1, time.monotonic() - started)
            if delay is None:
                break
            if not policy.retries(permanent):
                self.t.log(record, "WARN", NOT_RETRIED.format(attempt=attempt))
                break
            self.t.record(record, State.RETRIED)
            self.t.log(record, "WARN", f"attempt {attempt} failed; retrying in {delay:.1f}s")
            if self.cancelled.wait(delay):
                return State.KILLED
            attempt += 1
            record = self.data.new_record(task, scope, attempt=attempt)
        if state.is_failure and record.error:  # the last attempt's failure: the earlier ones were retried
            self.data.note_failure(first.id, record.error)
        if state.is_failure:
            with self.data.lock:
                self.retries[first.id] = retry if new_execution else None
        if state == State.SUCCESS and attempt > 1 and policy.warning_on_retry:
            state = State.WARNING
        state = settle(task, state)
        if state != record.state:
            self.t.record(record, state)
        if cache is not None and state in (State.SUCCESS, State.WARNING):
            cache.save(record.outputs)
        return state

    # -- taskCache ----------------------------------------------------------------------------------------------

    def cache_entry(self, task: Task, scope: Scope, record: TaskRunRecord) -> CacheEntry | None:
        """The task run's cache entry when the task has `taskCache.enabled`; None otherwise, or when its
        properties do not render (the task then runs, and fails on them as it would)."""
        if task.taskCache is None or not task.taskCache.enabled:
            return None
        try:
            properties = self.render_properties(task, lambda: key_variables(self.data.variables(task, scope, record)))
        except TaskFailed:
            return None
        flow = self.data.request.flow
        return cache_entry(
            self.s.data_dir, flow.namespace, flow.id, task.id, scope.value, properties, task.taskCache.ttl
        )

    def from_cache(self, task: Task, scope: Scope, record: TaskRunRecord, cache: CacheEntry) -> bool:
        """Finish the task run from its cache entry (SUCCESS, the cached outputs); False when there is none."""
        outputs = cache.load()
        if outputs is None:
            return False
        self.t.record(record, State.RUNNING, started_at=utcnow())
        self.t.log(
            record,
            "INFO",
            f"task '{task.id}' is not run: its outputs come from the task cache (taskCache, {cache.describe()})",
        )
        self.data.store_outputs(task.id, scope, outputs)
        self.t.record(record, State.SUCCESS, ended_at=utcnow(), outputs=outputs)
        return True

    def attempt(self, task: Task, scope: Scope, record: TaskRunRecord, inline: bool) -> tuple[State, bool]:
        """The attempt's end state, and whether its failure is permanent (`TaskFailed.permanent`)."""
        record.state, record.started_at = State.RUNNING, utcnow()  # as its properties see it; written below
        try:
            properties = self.render_properties(task, lambda: self.data.variables(task, scope, record))
            invocation = self.invocation(task, scope, record, properties)
        except TaskFailed as exc:
            self.t.record(record, State.RUNNING)
            return self.finish_failed(record, task, scope, exc), exc.permanent
        sink = self.t.sink(record)
        if inline:
            self.t.record(record, State.RUNNING)
            handle: TaskHandle = self.inline.submit(invocation, sink)
        else:  # its RUNNING row is written once the worker says it started (a script: its process runs)
            handle = self.s.executor.submit(invocation, sink)
            handle.wait_started(START_WAIT_SECONDS)
            self.t.record(record, State.RUNNING)
        try:
            result = self.wait(handle, invocation, record)
        except TaskKilled as exc:
            sink.flush()
            return self.finish_failed(record, task, scope, exc), False
        sink.flush()
        if result.exit_state is not None:
            self.t.record(record, State.SUCCESS, ended_at=utcnow())
            raise ExitSignal(State(result.exit_state))
        self.apply_labels(result)
        state = result.run_state
        if state.is_failure:
            error = result.error or "failed"
            failure = TaskKilled(error, result.outputs) if state == State.KILLED else TaskFailed(error, result.outputs)
            return self.finish_failed(record, task, scope, failure), result.permanent and state != State.KILLED
        if handle.cancelled and self.cancelled.is_set():
            return self.finish_failed(record, task, scope, TaskKilled(f"task {task.id!r} was killed")), False
        outputs = self.s.masker.mask_value(result.outputs)
        self.data.store_outputs(task.id, scope, outputs)
        state = State.WARNING if result.warnings else State.SUCCESS
        self.t.record(record, state, ended_at=utcnow(), outputs=outputs)
        return state, False

    def invocation(self, task: Task, scope: Scope, record: TaskRunRecord, properties: dict[str, Any]) -> TaskInvocation:
        request = self.data.request
        return TaskInvocation(
            type=type(task).type_name,
            properties=properties,
            execution_id=request.id,
            namespace=request.flow.namespace,
            flow_id=request.flow.id,
            flow_revision=request.revision,
            task_id=task.id,
            task_run_id=record.id,
            attempt=record.attempt,
            value=scope.value,
            iteration=scope.iteration,
            labels=dict(self.data.labels),
            input_files=storage_uris(properties),
            timeout_seconds=rendered_seconds(properties.get("timeout")),
            max_log_lines=self.s.max_log_lines,
            env=dict(self.s.env),
            workdir=str(scope.workdir) if scope.workdir is not None else None,
            execution=execution_view(self.s, self.data, properties, task.id) if type(task).reads_execution else None,
        )

    def wait(self, handle: TaskHandle, invocation: TaskInvocation, record: TaskRunRecord) -> TaskResult:
        """The result; a kill or the timeout is passed to the handle (TaskKilled when the task overstays)."""
        timeout = invocation.timeout_seconds
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            if self.cancelled.is_set() and not handle.cancelled:
                handle.cancel()
            if deadline is not None and time.monotonic() >= deadline and not handle.cancelled:
                handle.cancel()
                self.t.log(record, "ERROR", f"timed out after {timeout:g}s; stopping the task")
                with contextlib.suppress(Exception):
                    handle.result(timeout=KILL_GRACE_SECONDS)
                raise TaskKilled(f"task {invocation.task_id!r} timed out after {timeout:g}s")
            try:
                return handle.result(timeout=_POLL)
            except TimeoutError:
                continue

    def apply_labels(self, result: TaskResult) -> None:
        if result.labels:
            self.data.add_labels(result.labels)
            self.t.labels_changed()
