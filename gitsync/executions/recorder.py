"""`runner.engine.Hooks` over SQLite: the only code that writes task runs, logs and execution states.

A fast in-process task's transitions and logs are committed together when it ends (one transaction); a task
that goes to a worker gets its RUNNING row first. Each execution state change also writes, in the same
transaction, the `gitsync/<namespace>.<flow>` commit status it means.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gitsync.state.applied import enqueue_status
from gitsync.state.database import dumps, iso
from runner.engine.engine import ExecutionRequest, LogLine, SubflowResult, TaskRunRecord
from runner.states import State

if TYPE_CHECKING:
    from gitsync.executions.manager import RunManager


_STATUS_OF = {
    State.RUNNING: "pending",
    State.SUCCESS: "success",
    State.WARNING: "warning",
    State.FAILED: "failure",
    State.KILLED: "error",
    State.CANCELLED: "error",
}


def _execution_status(
    conn: Any, execution_id: str, state: State, error: str | None, reporting: frozenset[str] | None = None
) -> None:
    """`gitsync/<namespace>.<flow>` on the commit of the revision the execution runs, in the same transaction.

    Executions of flows that are not synced from git (`gitsync run --file`) have no commit and post nothing.
    """
    status = _STATUS_OF.get(state)
    row = conn.execute(
        "SELECT flow_uid, commit_sha, source, started_at, ended_at FROM executions WHERE id = ?", (execution_id,)
    ).fetchone()
    if status is None or row is None or not row["commit_sha"] or not row["source"]:
        return
    if reporting is not None and row["source"] not in reporting:
        return  # the source has no `status:` block: nothing would ever send it
    if state == State.RUNNING:
        description = f"running (execution {execution_id})"
    else:
        took = ""
        if row["started_at"] and row["ended_at"]:
            seconds = datetime.fromisoformat(row["ended_at"]) - datetime.fromisoformat(row["started_at"])
            took = f" in {seconds.total_seconds():.1f}s"
        description = f"{state.value.lower()}{took}" + (f": {error}" if error and state.is_failure else "")
    enqueue_status(conn, row["source"], row["commit_sha"], f"gitsync/{row['flow_uid']}", status, description, None)


class SqliteHooks:
    """`runner.engine.Hooks` over SQLite: each transition is one short transaction.

    Inside `batch()` (the engine's trivially fast in-process tasks), the calling thread's task-run and log writes
    are held and committed together in one transaction when the block ends: the task's end state is persisted
    before the engine goes on, and the RUNNING row a reader could not have seen is written as its last state.
    """

    def __init__(self, manager: RunManager) -> None:
        self.manager = manager
        self.store = manager.store
        self._local = threading.local()

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
            self._write(list(pending.task_runs.values()), pending.logs)

    def task_run(self, record: TaskRunRecord) -> None:
        row = _task_run_row(record)
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.task_runs[record.id] = row
        else:
            self._write([row], [])
        if self.manager.progress is not None:
            self.manager.progress("task_run", record)

    def execution(self, execution_id: str, state: State, **fields: Any) -> None:
        sets = ["state = CASE WHEN kill_requested = 1 AND ? = 'RUNNING' THEN 'KILLING' ELSE ? END"]
        params: list[Any] = [state.value, state.value]
        for key in ("started_at", "ended_at"):
            if fields.get(key) is not None:
                sets.append(f"{key} = ?")
                params.append(iso(fields[key]))
        for key in ("outputs", "labels"):
            if key in fields and fields[key] is not None:
                sets.append(f"{key} = ?")
                params.append(dumps(fields[key]))
        if fields.get("error"):
            sets.append("error = ?")
            params.append(fields["error"])
        with self.store.atomic() as conn:
            conn.execute(f"UPDATE executions SET {', '.join(sets)} WHERE id = ?", (*params, execution_id))
            if fields.get("started_at") is not None or state.is_terminal:
                _execution_status(conn, execution_id, state, fields.get("error"), self.manager.status_sources)
        if self.manager.progress is not None:
            self.manager.progress("execution", (execution_id, state, fields))

    def logs(self, lines: Sequence[LogLine]) -> None:
        rows = [(line.execution_id, line.task_run_id, iso(line.at), line.level, line.message) for line in lines]
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.logs.extend(rows)
        else:
            self._write([], rows)
        if self.manager.progress is not None:
            for line in lines:
                self.manager.progress("log", line)

    def _write(self, task_runs: list[tuple[Any, ...]], logs: list[tuple[Any, ...]]) -> None:
        if not task_runs and not logs:
            return
        with self.store.atomic() as conn:
            if task_runs:
                conn.executemany(_UPSERT_TASK_RUN, task_runs)
            if logs:
                conn.executemany(_INSERT_LOG, logs)

    def subflow(
        self,
        parent: ExecutionRequest,
        task: Any,
        inputs: dict[str, Any],
        labels: dict[str, str],
        cancelled: threading.Event,
    ) -> SubflowResult:
        return self.manager.subflow(parent, task, inputs, labels, cancelled)

    def wait_for_resume(self, execution_id: str, cancelled: threading.Event) -> dict[str, Any] | None:
        return self.manager.wait_for_resume(execution_id, cancelled)


@dataclass
class _Pending:
    """Writes held by `_Hooks.batch()`: the last row of each task run (in first-seen order) and the log lines."""

    task_runs: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    logs: list[tuple[Any, ...]] = field(default_factory=list)


_UPSERT_TASK_RUN = """INSERT INTO task_runs (id, execution_id, task_id, task_type, parent_id, value, iteration, attempt,
                                          state, started_at, ended_at, outputs, error)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET state = excluded.state, started_at = excluded.started_at,
                     ended_at = excluded.ended_at, outputs = excluded.outputs, error = excluded.error"""
_INSERT_LOG = "INSERT INTO logs (execution_id, task_run_id, at, level, message) VALUES (?, ?, ?, ?, ?)"


def _task_run_row(record: TaskRunRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.execution_id,
        record.task_id,
        record.task_type,
        record.parent_id,
        record.value if record.value is None or isinstance(record.value, str) else dumps(record.value),
        record.iteration,
        record.attempt,
        record.state.value,
        iso(record.started_at) if record.started_at else None,
        iso(record.ended_at) if record.ended_at else None,
        dumps(record.outputs) if record.outputs else "{}",
        record.error,
    )
