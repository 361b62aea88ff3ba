"""Task-run and log rows in SQLite: what the engine reports while an execution runs, and the reads of them.

A task run is one attempt of one task (a ForEach value or a Parallel branch is its own); its row is upserted on
each transition. Rows are converted when the engine reports them (`task_run_row`, `log_row`), so a batch holds
the values of that moment even if the engine goes on changing its record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gitsync.state.database import Store, dumps, iso, loads
from runner.engine.records import LogLine, TaskRunRecord
from runner.states import ACTIVE_STATES, State

TaskRunRow = tuple[Any, ...]
LogRow = tuple[Any, ...]

_UPSERT_TASK_RUN = """INSERT INTO task_runs (id, execution_id, task_id, task_type, parent_id, value, iteration, attempt,
                                          state, started_at, ended_at, outputs, error, loop_values)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET state = excluded.state, started_at = excluded.started_at,
                     ended_at = excluded.ended_at, outputs = excluded.outputs, error = excluded.error"""
_INSERT_LOG = "INSERT INTO logs (execution_id, task_run_id, at, level, message) VALUES (?, ?, ?, ?, ?)"
_UNFINISHED = ",".join(f"'{state.value}'" for state in ACTIVE_STATES)


def task_run_row(record: TaskRunRecord) -> TaskRunRow:
    """The row `write` stores for `record`, as it is now."""
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
        dumps(list(record.loop_values)) if record.loop_values else None,
    )


def log_row(line: LogLine) -> LogRow:
    return (line.execution_id, line.task_run_id, iso(line.at), line.level, line.message)


def write(store: Store, task_runs: Sequence[TaskRunRow], logs: Sequence[LogRow]) -> None:
    """Upsert task runs and append log lines, all in one transaction (nothing when both are empty)."""
    if not task_runs and not logs:
        return
    with store.atomic() as conn:
        if task_runs:
            conn.executemany(_UPSERT_TASK_RUN, task_runs)
        if logs:
            conn.executemany(_INSERT_LOG, logs)


def end_unfinished(conn: sqlite3.Connection, execution_id: str, state: State, reason: str, now: datetime) -> None:
    """Inside the caller's transaction: the execution's task runs that had not ended get `state` and `reason`."""
    conn.execute(
        f"""UPDATE task_runs SET state = ?, ended_at = ?, error = ?
            WHERE execution_id = ? AND state IN ({_UNFINISHED})""",
        (state.value, iso(now), reason, execution_id),
    )


def task_runs(store: Store, execution_id: str) -> list[dict[str, Any]]:
    """An execution's task runs (one per attempt), in the order they started."""
    rows = store.query(
        """SELECT task_id, value, attempt, state, outputs, started_at, ended_at, error FROM task_runs
           WHERE execution_id = ? ORDER BY id""",
        (execution_id,),
    )
    for row in rows:
        row["outputs"] = loads(row["outputs"]) or {}
    return rows


def records(store: Store, execution_id: str) -> list[TaskRunRecord]:
    """An execution's task runs (every attempt) as the engine recorded them, in the order they were created."""
    rows = store.query("SELECT * FROM task_runs WHERE execution_id = ? ORDER BY id", (execution_id,))
    return [
        TaskRunRecord(
            id=row["id"],
            execution_id=row["execution_id"],
            task_id=row["task_id"],
            task_type=row["task_type"],
            parent_id=row["parent_id"],
            value=row["value"],
            iteration=row["iteration"],
            attempt=row["attempt"],
            state=State(row["state"]),
            started_at=_moment(row["started_at"]),
            ended_at=_moment(row["ended_at"]),
            outputs=loads(row["outputs"]) or {},
            error=row["error"],
            loop_values=tuple(str(value) for value in loads(row["loop_values"]) or ()),
        )
        for row in rows
    ]


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def logs_after(store: Store, execution_id: str, after: int = 0) -> list[dict[str, Any]]:
    """The execution's log lines with an id above `after`, oldest first, each with its task's id (or None)."""
    return store.query(
        """SELECT l.id, l.at, l.level, l.message, t.task_id FROM logs l LEFT JOIN task_runs t
           ON t.id = l.task_run_id WHERE l.execution_id = ? AND l.id > ? ORDER BY l.id""",
        (execution_id, after),
    )
