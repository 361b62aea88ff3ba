"""Running executions: one thread each, admitted by flow concurrency and trigger overlap, retried, released.

An execution runs when it is admitted: an earlier active execution of the same trigger queues it; a flow's
concurrency limit queues, cancels or fails it (QUEUE, CANCEL, FAIL). When an execution ends, a failed one may be
retried as a new execution (a `retry` with CREATE_NEW_EXECUTION: the flow's, or that of the task that failed it),
the flow's oldest queued execution is started, and the end is handed to `on_end` (Flow triggers).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gitsync.errors import StateError
from gitsync.executions.control import ControlRequests
from gitsync.executions.creation import ExecutionFactory
from gitsync.executions.errors import RunError
from gitsync.executions.recorder import SqliteRecorder
from gitsync.executions.replays import plan_of
from gitsync.state import executions as execution_rows
from gitsync.state.database import Store, loads
from runner.engine.data import execution_labels
from runner.engine.engine import Engine, ExecutionOutcome, ExecutionRequest
from runner.engine.retry import RetryPolicy
from runner.flow import Flow
from runner.plugin import Retry, RetryBehavior
from runner.states import State

log = logging.getLogger("gitsync.runs")

OnEnd = Callable[[Flow, ExecutionRequest, ExecutionOutcome], object]
HandOff = Callable[[], bool]
"""Whether executions this process creates for others (downstream, retries) go to the daemon instead."""
_OVER_LIMIT = {"QUEUE": State.QUEUED, "CANCEL": State.CANCELLED, "FAIL": State.FAILED}


class ExecutionRunner:
    """Starts executions on threads (or runs one on the caller's) and decides what happens around each run."""

    def __init__(
        self,
        store: Store,
        factory: ExecutionFactory,
        control: ControlRequests,
        engine: Engine,
        on_end: OnEnd,
        hand_off: HandOff | None = None,
        *,
        recorder: SqliteRecorder,
    ) -> None:
        """`recorder`: the engine's, which admits executions with their first state."""
        self.store = store
        self.recorder = recorder
        self.factory = factory
        self.control = control
        self.engine = engine
        self.on_end = on_end
        self.owner = factory.owner
        self.hand_off = hand_off
        self.handed: list[str] = []
        """The executions this process handed to the daemon (`start_new`)."""
        self._threads: dict[str, threading.Thread] = {}
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()
        self._closing = False

    def start(self, execution_id: str) -> None:
        """Run the execution on a thread of its own (unless flow concurrency or trigger overlap queues it)."""
        with self._lock:
            if execution_id in self._threads or self._closing:
                return  # after shutdown() a CREATED execution stays CREATED: the next process starts it
            event = self.control.event(execution_id)
            thread = threading.Thread(
                target=self._run_guarded, args=(execution_id, event), daemon=True, name=f"execution-{execution_id}"
            )
            self._threads[execution_id] = thread
            thread.start()  # under the lock: wait_all() never joins a listed thread that has not started

    def start_new(self, execution_id: str) -> None:
        """An execution this process created for another to follow (a Flow trigger's, a retry, a subflow that is
        not waited for): handed to the daemon when `hand_off` says one runs, else started here."""
        handing = self.hand_off is not None and self.owner is not None and self.hand_off()
        if handing and self.owner is not None and execution_rows.hand_over(self.store, execution_id, self.owner):
            self.handed.append(execution_id)
            log.info("execution %s is handed to the daemon", execution_id)
            return
        self.start(execution_id)

    def active(self) -> list[str]:
        """The executions running on this process's threads, or waiting here for a retry's delay."""
        with self._lock:
            return [*self._threads, *self._timers]

    def wait_all(self, timeout: float | None = None) -> bool:
        """Wait until no execution runs on this process's threads and no retry waits here; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._threads.values())
                waiting = bool(self._timers)
            if not threads and not waiting:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            if threads:
                threads[0].join(0.2 if left is None else min(left, 0.2))
            else:
                time.sleep(0.05)

    def run(self, execution_id: str, cancelled: threading.Event | None = None) -> ExecutionOutcome | None:
        """Run the execution on the calling thread; None when it was queued, cancelled or refused instead."""
        event = self.control.event(execution_id, cancelled)
        try:
            return self._run(execution_id, event)
        finally:
            self.control.forget(execution_id)

    def wait(self, execution_id: str, timeout: float | None = None) -> bool:
        thread = self._threads.get(execution_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def start_pending(self) -> list[str]:
        """Start every CREATED execution no other live process will start (fires recorded while no runner was
        there, executions handed over by `gitsync run`, those of an owner that is gone)."""
        with self._lock:
            here = {*self._threads, *self._timers}  # running, or waiting for their retry's interval
        ids = [i for i in execution_rows.created_executions(self.store, self.owner) if i not in here]
        for execution_id in ids:
            self.start(execution_id)
        return ids

    def shutdown(self) -> None:
        """Stop every execution this process runs (their events are set) and wait for their threads."""
        with self._lock:
            self._closing = True
            timers = list(self._timers.values())
            self._timers.clear()
        for timer in timers:  # their executions stay CREATED; the lease's release leaves them to the daemon
            timer.cancel()
        self.control.cancel_all()
        for thread in list(self._threads.values()):
            thread.join(timeout=15)

    def _run_guarded(self, execution_id: str, event: threading.Event) -> None:
        try:
            self._run(execution_id, event)
        except Exception:  # an engine bug must not leave the execution RUNNING
            log.exception("execution %s crashed", execution_id)
            error = "internal error; see the logs"
            try:
                execution_rows.finish_execution(self.store, execution_id, State.FAILED, error=error)
            except StateError as exc:  # the recorder holds this execution's writes and resolves it when writes work
                log.error("execution %s: its end could not be written: %s", execution_id, exc)
        finally:
            with self._lock:
                self._threads.pop(execution_id, None)
                self.control.forget(execution_id)

    def _run(self, execution_id: str, event: threading.Event) -> ExecutionOutcome | None:
        row = execution_rows.get_execution(self.store, execution_id)
        if row is None:
            raise RunError(f"no execution {execution_id!r}")
        if State(row["state"]).is_terminal:
            return None
        flow = self.factory.flow_of(row)
        inputs = loads(row["inputs"]) or {}
        missing = self.factory.missing_secrets(flow, execution_id, inputs)
        if missing is not None:
            execution_rows.finish_execution(self.store, execution_id, State.FAILED, error=missing)
            return ExecutionOutcome(State.FAILED, {}, {}, missing, {})
        try:
            replay = plan_of(self.store, self.factory, row)
        except RunError as exc:
            execution_rows.finish_execution(self.store, execution_id, State.FAILED, error=str(exc))
            return ExecutionOutcome(State.FAILED, {}, {}, str(exc), {})
        # what was stored is masked; this process may hold the clear values (it created the execution)
        live = self.factory.live(execution_id) or {}
        request = ExecutionRequest(
            id=execution_id,
            flow=flow,
            revision=row["revision"],
            commit=row["commit_sha"],
            inputs=live.get("inputs", inputs),
            labels=live.get("labels", loads(row["labels"]) or {}),
            trigger=live.get("trigger", loads(row["trigger_vars"]) or None) or None,
            created_at=datetime.fromisoformat(row["created_at"]),
            started_at=datetime.now(UTC),
            original_id=row["replay_of"],  # `execution.originalId`: a replay's is the execution it replays
            replay=replay,
        )
        if self._admit(row, flow, request) is not None:
            return None
        self.control.watch(execution_id, event)
        try:
            outcome = self.engine.run(request, event)
        finally:
            self.control.unwatch(execution_id)
            self.recorder.admitted_done(execution_id)
        self._after(execution_id, flow, request, outcome)
        if outcome.state.is_terminal:
            self.factory.forget(execution_id)
        return outcome

    def _admit(self, row: dict[str, Any], flow: Flow, request: ExecutionRequest) -> State | None:
        """Flow concurrency and trigger overlap: None to run now, else the state the execution was given. An
        execution admitted is RUNNING with the start time and labels the engine starts it with, and its status."""
        concurrency = flow.concurrency
        limit = None if concurrency is None else concurrency.limit
        over_limit = State.QUEUED if concurrency is None else _OVER_LIMIT[concurrency.behavior.value]
        assert request.started_at is not None
        return self.recorder.admit(row, request.started_at, execution_labels(request), limit, over_limit)

    def _after(self, execution_id: str, flow: Flow, request: ExecutionRequest, outcome: ExecutionOutcome) -> None:
        if outcome.state == State.FAILED:
            self.retry_as_new_execution(execution_id, outcome.retry)
        self.release_queued(flow.uid)
        if not outcome.state.is_terminal:
            return
        try:
            self.on_end(flow, request, outcome)
        except Exception:  # a downstream trigger must not fail this execution
            log.exception("flow triggers after %s failed", execution_id)

    def retry_flow(self, execution_id: str, flow: Flow) -> str | None:
        """Flow-level `retry` with behavior CREATE_NEW_EXECUTION (for a failure the engine did not see end)."""
        return self.retry_as_new_execution(execution_id, flow.retry)

    def retry_as_new_execution(self, execution_id: str, retry: Retry | None) -> str | None:
        """A CREATE_NEW_EXECUTION `retry` (the flow's, or a task's): FAILED -> RETRIED and a new execution, started
        (or handed over) after the retry's delay, while the chain has attempts left (maxAttempts counts the
        executions) and the new one would start within maxDuration of the first one's creation (as in Kestra)."""
        if retry is None or retry.behavior != RetryBehavior.CREATE_NEW_EXECUTION:
            return None
        row = execution_rows.get_execution(self.store, execution_id)
        if row is None:
            return None
        first = execution_rows.get_execution(self.store, row["original_id"]) if row["original_id"] else row
        began = datetime.fromisoformat((first or row)["created_at"])
        elapsed = (datetime.now(UTC) - began).total_seconds()
        delay = RetryPolicy.of(retry).delay_before(row["attempt"] + 1, elapsed, unbounded=True)
        if delay is None:
            return None
        new_id = execution_rows.retry_execution(self.store, execution_id, self.owner)
        self.factory.carry_over(execution_id, new_id)
        with self._lock:
            if self._closing:
                return new_id
            timer = threading.Timer(delay, self._retry_due, (new_id,))
            timer.daemon = True
            self._timers[new_id] = timer
        timer.start()
        return new_id

    def _retry_due(self, execution_id: str) -> None:
        with self._lock:
            if self._timers.pop(execution_id, None) is None:
                return  # cancelled by shutdown()
        self.start_new(execution_id)

    def release_queued(self, flow_uid: str) -> None:
        """Start the oldest queued execution of this flow (and of each trigger) that may now run."""
        for execution_id in execution_rows.oldest_queued(self.store, flow_uid):
            execution_rows.release_queued(self.store, execution_id)
            self.start(execution_id)
