"""`runner.engine.records.Recorder` over SQLite: the engine's task runs, execution states and logs.

Task-run rows and log lines are not one transaction each. A task run's start (RUNNING) is written at once, so a
process killed while a task runs leaves it seen and then resolved; every later row and every log line waits
(`_Waiting`: at most `LOG_FLUSH_SECONDS`, or `GROUP_ROWS` rows) and goes with the next write, or is written by
the flusher thread. In a chain of worker tasks (shell commands) each task's end goes in the transaction that
records the next one's start, which the engine writes once that task's process runs: one transaction a task.
Only a task run's last row waits, and the rows go before the lines in their transaction, so nothing is stored
out of order.

An execution state change takes what waits with it, written first, so a reader never sees an execution end
before its task runs. A process killed meanwhile loses at most that tenth of a second of rows and lines, and its
execution is resolved as lost like any other (its task runs that were written unfinished end FAILED with it).
An in-process task's transitions and logs (`batch()`) are gathered while it runs, and its row is made once, from
its last state, when it ends.

Each execution state change also writes, in the same transaction, the `gitsync/<namespace>.<flow>` commit status
it means (see `gitsync.state.executions`). The first one, RUNNING, is written by the admission (`admit`: owner,
start, labels, status in one transaction), so the engine's first call is not written twice. Progress listeners
are told of each row and line at once.

Every write is masked here, whatever the engine did: a task run's value, outputs and error, an execution's
labels, outputs and error (hence the commit status description), and what progress listeners are told.

A write the database refuses (`StateError`: read-only, full, I/O error) never reaches the engine. What could not
be written is held (`_Backlog`, bounded) and retried by one thread every `RETRY_SECONDS` until it commits, in
the order it came: the execution's last state and fields, its task runs' last rows, and the newest log lines.
When writes work again an execution the engine ended gets its real end state; one whose engine thread is gone
without ending it becomes FAILED with "the state database could not be written: …".
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gitsync.errors import StateError
from gitsync.state import executions as execution_rows
from gitsync.state import task_runs as task_run_rows
from gitsync.state.database import Store
from runner.engine.records import LogLine, TaskRunRecord
from runner.masking import Masker
from runner.states import State

log = logging.getLogger("gitsync.executions.recorder")

_MASKED_FIELDS = ("outputs", "labels", "error")

RETRY_SECONDS = 0.5
MAX_HELD_TASK_RUNS = 10_000
"""Task-run rows held while writes fail; past it an execution's further rows are dropped and it is marked lost
(its unfinished task runs become FAILED with the reason once writes work)."""
MAX_HELD_LOGS = 10_000
"""Log lines held while writes fail; the oldest are dropped first (and counted in the service log)."""
LOG_FLUSH_SECONDS = 0.1
"""The longest a task run's row or a log line waits for the next write before it is written on its own."""
GROUP_ROWS = 500
"""Task-run rows written at once when this many wait (a long chain does not pile up a tenth of a second of
rows)."""

Progress = Callable[[str, Any], None]
"""Told of every record as it is written: ("task_run", TaskRunRecord), ("execution", (id, state, fields)) and
("log", LogLine)."""


class SqliteRecorder:
    """Execution states are one short transaction each; task-run rows and log lines wait to go with them.

    Inside `batch()` (the engine's trivially fast in-process tasks), the calling thread's task-run and log writes
    are gathered until the block ends, and the RUNNING row a reader could not have seen is made as its last state.
    """

    def __init__(
        self,
        store: Store,
        progress: Progress | None = None,
        status_sources: frozenset[str] | None = None,
        masker: Masker | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        """The owner id this process writes as: a state change of an execution it no longer owns is dropped."""
        self.on_disowned: Callable[[str], None] | None = None
        """Called when that happens (another process resolved the execution as lost): the run is stopped."""
        self.masker = masker if masker is not None else Masker()
        self.progress = progress
        self.status_sources = status_sources
        """Sources whose executions report a commit status (None: every source, e.g. in tests)."""
        self._local = threading.local()
        self._backlog = _Backlog()
        self._held_lock = threading.Lock()
        self._retrier: threading.Thread | None = None
        self._waiting = _Waiting(self.flush)
        self._write_lock = threading.Lock()
        """Held from taking the waiting rows and lines to writing them: they are stored in the order they came."""
        self._admitted: dict[str, tuple[datetime, Any]] = {}
        """Execution id -> the start time and masked labels its admission wrote with its RUNNING state."""

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._local, "pending", None) is not None:
            yield
            return
        pending = self._local.pending = _Pending()
        try:
            yield
        finally:
            self._local.pending = None
            self._wait_rows(pending)

    def task_run(self, record: TaskRunRecord) -> None:
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is not None:  # its row is made once, from its last state, when the batch ends
            pending.records[record.id] = record
            if self.progress is not None:
                self.progress("task_run", self._masked(record))
            return
        record = self._masked(record)
        row = task_run_rows.task_run_row(record)
        if record.state is State.RUNNING:  # a start is written at once: a crash leaves it seen, then resolved
            self._write_rows([row], [])
        elif self._waiting.add({record.id: row}, ()):
            self._write_rows([], [])
        if self.progress is not None:
            self.progress("task_run", record)

    def admit(
        self,
        execution: dict[str, Any],
        started_at: datetime,
        labels: Mapping[str, str],
        limit: int | None = None,
        over_limit: State = State.QUEUED,
    ) -> State | None:
        """Admit the execution (`gitsync.state.executions.admit`) with the RUNNING state the engine starts it in
        (`started_at`, the labels masked) and its status, in one transaction: the engine's first `execution()`
        call, when it says just that, is then not written again (its progress listeners are told)."""
        masked = self.masker.mask_value(dict(labels))
        found = execution_rows.admit(
            self.store,
            execution,
            limit,
            over_limit,
            self.owner,
            execution_rows.Admitted(started_at, masked),
            self.status_sources,
        )
        if found is None:
            self._admitted[execution["id"]] = (started_at, masked)
        return found

    def admitted_done(self, execution_id: str) -> None:
        """The engine's run of the execution is over (or crashed before its first state): nothing of its admission
        is kept."""
        self._admitted.pop(execution_id, None)

    def execution(self, execution_id: str, state: State, **fields: Any) -> None:
        for key in _MASKED_FIELDS:
            if fields.get(key) is not None:
                fields[key] = self.masker.mask_value(fields[key])
        admitted = self._admitted.pop(execution_id, None) if self._admitted else None
        if admitted is None or not _admitted_as(admitted, state, fields):
            self._write_state(execution_id, state, fields)
        if self.progress is not None:
            self.progress("execution", (execution_id, state, fields))

    # -- writes, and what is held while the database refuses them -----------------------------------------------

    def _write_rows(self, task_runs: list[task_run_rows.TaskRunRow], logs: list[task_run_rows.LogRow]) -> None:
        """The task-run rows and log lines, after the lines that wait, in one transaction (held if refused)."""
        with self._write_lock:
            waiting_runs, waiting_logs = self._waiting.take()
            logs = waiting_logs + logs
            task_runs = waiting_runs + task_runs
            if not task_runs and not logs:
                return
            if not self._backlog.empty:
                self._hold(lambda held: held.add_rows(task_runs, logs))
                return
            try:
                task_run_rows.write(self.store, task_runs, logs)
            except StateError as exc:
                self._hold(lambda held: held.add_rows(task_runs, logs), exc)

    def _wait_rows(self, pending: _Pending) -> None:
        """An in-process task's rows and lines: they wait for the next write, the flusher, or `GROUP_ROWS`."""
        rows = {run_id: task_run_rows.task_run_row(self._masked(record)) for run_id, record in pending.records.items()}
        if self._waiting.add(rows, pending.logs):
            self._write_rows([], [])

    def _wait_line(self, rows: list[task_run_rows.LogRow]) -> None:
        """Lines of a worker: written with the next write, or by the flusher thread in `LOG_FLUSH_SECONDS`."""
        self._waiting.add({}, rows)

    def flush(self) -> None:
        """Write the rows and log lines that wait now."""
        self._write_rows([], [])

    def _write_state(self, execution_id: str, state: State, fields: dict[str, Any]) -> None:
        """The state change, in one transaction with the rows and lines that wait (stored before it)."""
        if not self._backlog.empty or execution_id in self._backlog.lost:
            self._write_rows([], [])
            self._hold(lambda held: held.add_state(execution_id, state, fields))
            return
        with self._write_lock:
            task_runs, logs = self._waiting.take()
            try:
                with self.store.atomic():
                    task_run_rows.write(self.store, task_runs, logs)
                    written = execution_rows.record_state(
                        self.store, execution_id, state, fields, self.status_sources, self.owner
                    )
            except StateError as exc:

                def hold(held: _Backlog) -> None:
                    held.add_rows(task_runs, logs)
                    held.add_state(execution_id, state, fields)

                self._hold(hold, exc)
                return
        if not written:
            self._disowned(execution_id)

    def _disowned(self, execution_id: str) -> None:
        log.warning(
            "execution %s was resolved by another process while this one could not renew its lease; "
            "its run here is stopped and nothing more of it is written",
            execution_id,
        )
        if self.on_disowned is not None:
            self.on_disowned(execution_id)

    def _hold(self, add: Callable[[_Backlog], None], exc: StateError | None = None) -> None:
        with self._held_lock:
            held = self._backlog
            if exc is not None and held.error is None:
                held.error = str(exc)
                log.error("state writes fail; holding the executions' records until they work: %s", exc)
            add(held)
            if self._retrier is None or not self._retrier.is_alive():
                self._retrier = threading.Thread(target=self._retry, name="recorder-retry", daemon=True)
                self._retrier.start()

    def _retry(self) -> None:
        while True:
            time.sleep(RETRY_SECONDS)
            with self._held_lock:
                if self._backlog.empty:  # lost ids stay: their next state write brings the thread back
                    self._retrier = None
                    return
                try:
                    self._flush(self._backlog)
                except StateError:
                    continue
                except Exception:  # a bug here must not lose the thread while records are held
                    log.exception("writing the held execution records failed")
                    continue
                written = self._backlog
                self._backlog = _Backlog(lost=written.lost)
            log.warning(
                "state writes work again: wrote the held records of %d execution(s)%s",
                len(written.states),
                f" ({written.dropped_logs} log line(s) had to be dropped)" if written.dropped_logs else "",
            )

    def _flush(self, held: _Backlog) -> None:
        """Everything held, in one transaction (nested `atomic()` blocks join it)."""
        reason = f"the state database could not be written: {held.error or 'unknown error'}"
        now = datetime.now(UTC)
        with self.store.atomic() as conn:
            task_run_rows.write(self.store, list(held.task_runs.values()), list(held.logs))
            for execution_id, (state, fields, thread) in held.states.items():
                abandoned = not state.is_terminal and state is not State.PAUSED and not thread.is_alive()
                if abandoned:  # no engine will end it: FAILED, with why
                    state, fields = State.FAILED, {**fields, "ended_at": now, "error": fields.get("error") or reason}
                if abandoned or (state.is_terminal and execution_id in held.lost):
                    task_run_rows.end_unfinished(conn, execution_id, State.FAILED, reason, now)
                execution_rows.record_state(self.store, execution_id, state, fields, self.status_sources, self.owner)
        for execution_id, (state, _fields, _thread) in held.states.items():
            if state.is_terminal:
                held.lost.discard(execution_id)

    def _masked(self, record: TaskRunRecord) -> TaskRunRecord:
        """A copy of the record with its value (and the loop values it runs in), outputs and error masked (the record
        itself when nothing is)."""
        masker = self.masker
        if not masker.active:
            return record
        value, outputs = masker.mask_value(record.value), masker.mask_value(record.outputs)
        loop_values = tuple(masker.mask_value(list(record.loop_values)))
        error = masker.mask(record.error) if record.error else record.error
        if (value, outputs, error, loop_values) == (record.value, record.outputs, record.error, record.loop_values):
            return record
        return dataclasses.replace(record, value=value, outputs=outputs, error=error, loop_values=loop_values)

    def logs(self, lines: Sequence[LogLine]) -> None:
        rows = [task_run_rows.log_row(line) for line in lines]
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.logs.extend(rows)
        else:
            self._wait_line(rows)
        if self.progress is not None:
            for line in lines:
                self.progress("log", line)


def _admitted_as(admitted: tuple[datetime, Any], state: State, fields: dict[str, Any]) -> bool:
    """Whether a state change is the RUNNING state the admission already wrote (same start, same labels)."""
    return (
        state is State.RUNNING
        and fields.keys() == {"started_at", "labels"}
        and (fields["started_at"], fields["labels"]) == admitted
    )


class _Waiting:
    """What waits to be written with the next write, or by the flusher thread after `LOG_FLUSH_SECONDS`: log lines,
    and each task run's last row. Adding never waits for a write (a lock of its own)."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._lock = threading.Lock()
        self._lines: list[task_run_rows.LogRow] = []
        self._runs: dict[str, task_run_rows.TaskRunRow] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def __bool__(self) -> bool:
        return bool(self._lines or self._runs)

    def take(self) -> tuple[list[task_run_rows.TaskRunRow], list[task_run_rows.LogRow]]:
        """The rows and lines that wait (the caller holds the recorder's write lock, which orders the writes)."""
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
            lines, self._lines = self._lines, []
            self._wake.clear()
            return runs, lines

    def add(self, runs: Mapping[str, task_run_rows.TaskRunRow], lines: Sequence[task_run_rows.LogRow]) -> bool:
        """Let them wait; whether `GROUP_ROWS` rows now wait (the caller writes them at once)."""
        with self._lock:
            for run_id, row in runs.items():
                self._runs.pop(run_id, None)  # its newer row goes last: rows are written in order
                self._runs[run_id] = row
            self._lines.extend(lines)
            if not self._wake.is_set():
                self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="recorder-logs", daemon=True)
                self._thread.start()
            return len(self._runs) >= GROUP_ROWS

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(LOG_FLUSH_SECONDS)
            try:
                self._flush()
            except Exception:  # a bug here must not lose the thread while rows and lines wait
                log.exception("writing the tasks' rows and log lines failed")


@dataclass
class _Pending:
    """Writes held by `batch()`: each task run's record (its row is made from its last state, in first-seen order)
    and the log lines."""

    records: dict[str, TaskRunRecord] = field(default_factory=dict)
    logs: list[task_run_rows.LogRow] = field(default_factory=list)


@dataclass
class _Backlog:
    """What the database refused, merged so that it stays bounded: per execution its last state with every field
    it was given, per task run its last row, and the newest log lines."""

    states: dict[str, tuple[State, dict[str, Any], threading.Thread]] = field(default_factory=dict)
    task_runs: dict[str, task_run_rows.TaskRunRow] = field(default_factory=dict)
    logs: deque[task_run_rows.LogRow] = field(default_factory=lambda: deque(maxlen=MAX_HELD_LOGS))
    dropped_logs: int = 0
    lost: set[str] = field(default_factory=set)
    """Executions some of whose task-run rows were dropped; kept across flushes until their end is written."""
    error: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.states or self.task_runs or self.logs)

    def add_rows(self, task_runs: Sequence[task_run_rows.TaskRunRow], logs: Sequence[task_run_rows.LogRow]) -> None:
        for row in task_runs:
            key = row[0]
            if key in self.task_runs or len(self.task_runs) < MAX_HELD_TASK_RUNS:
                self.task_runs[key] = row
            else:
                self.lost.add(row[1])
        overflow = len(self.logs) + len(logs) - MAX_HELD_LOGS
        if overflow > 0:
            self.dropped_logs += overflow
        self.logs.extend(logs)

    def add_state(self, execution_id: str, state: State, fields: dict[str, Any]) -> None:
        previous = self.states.get(execution_id)
        # a terminal state's fields are the engine's last word: its error=None clears an error held before
        given = {k: v for k, v in fields.items() if v is not None or (k == "error" and state.is_terminal)}
        merged = {**previous[1], **given} if previous else dict(fields)
        thread = previous[2] if previous else threading.current_thread()
        self.states[execution_id] = (state, merged, thread)
