"""What the recorder makes readers see, on a real SQLite file: a task's start at once, its end and its log lines
soon after (with the next write, or the flusher's), and never an execution's end before its task runs' ends.

A second connection reads the file, as `gitsync executions show` in another process would.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from test_state_executions import new, set_state
from test_state_executions import store as store

from gitsync.executions.recorder import LOG_FLUSH_SECONDS, SqliteRecorder
from gitsync.state.database import Store
from runner.engine.records import LogLine, TaskRunRecord
from runner.states import State

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


def reader(store: Store) -> sqlite3.Connection:
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def task_states(conn: sqlite3.Connection, execution_id: str) -> dict[str, str]:
    rows = conn.execute("SELECT task_id, state FROM task_runs WHERE execution_id = ? ORDER BY id", (execution_id,))
    return {row["task_id"]: row["state"] for row in rows}


Running = tuple[str, SqliteRecorder, sqlite3.Connection]


@pytest.fixture
def running(store: Store) -> Running:
    """A RUNNING execution, a recorder over the store, and another connection reading the same file."""
    execution_id = new(store)
    set_state(store, execution_id, State.RUNNING)
    return execution_id, SqliteRecorder(store), reader(store)


def run_record(execution_id: str, task_id: str, state: State, **fields: Any) -> TaskRunRecord:
    return TaskRunRecord(
        f"{execution_id}-{task_id}", execution_id, task_id, "io.kestra.plugin.scripts.shell.Commands", None, None,
        None, 1, state, **fields,
    )  # fmt: skip


def test_a_started_task_is_seen_at_once_and_its_end_with_the_next_start(running: Running) -> None:
    execution_id, recorder, other = running
    first = run_record(execution_id, "first", State.RUNNING, started_at=T0)
    recorder.task_run(first)
    assert task_states(other, execution_id) == {"first": "RUNNING"}  # no flush, no wait: a crash now leaves it seen
    first.state, first.ended_at = State.SUCCESS, T0
    recorder.task_run(first)
    recorder.logs([LogLine(execution_id, first.id, T0, "INFO", "hi")])
    recorder.task_run(run_record(execution_id, "second", State.RUNNING, started_at=T0))
    assert task_states(other, execution_id) == {"first": "SUCCESS", "second": "RUNNING"}
    assert [row["message"] for row in other.execute("SELECT message FROM logs")] == ["hi"]


def test_an_end_with_no_write_after_it_is_written_by_the_flusher(running: Running) -> None:
    execution_id, recorder, other = running
    task = run_record(execution_id, "only", State.RUNNING, started_at=T0)
    recorder.task_run(task)
    task.state, task.ended_at = State.FAILED, T0
    recorder.task_run(task)
    for _ in range(50):  # the flusher writes it within LOG_FLUSH_SECONDS; allow a loaded machine 50 times that
        if task_states(other, execution_id) == {"only": "FAILED"}:
            break
        time.sleep(LOG_FLUSH_SECONDS)
    assert task_states(other, execution_id) == {"only": "FAILED"}


def test_an_execution_end_is_never_read_before_its_task_runs_ends(running: Running) -> None:
    execution_id, recorder, other = running
    tasks = [run_record(execution_id, f"t{n}", State.RUNNING, started_at=T0) for n in range(3)]
    for task in tasks:
        recorder.task_run(task)
        task.state, task.ended_at = State.SUCCESS, T0
        recorder.task_run(task)
    recorder.execution(execution_id, State.SUCCESS, ended_at=T0)
    other.execute("BEGIN")  # one snapshot: the execution's state and its task runs as one reader sees them
    (state,) = other.execute("SELECT state FROM executions WHERE id = ?", (execution_id,)).fetchone()
    assert state == "SUCCESS"
    assert task_states(other, execution_id) == {"t0": "SUCCESS", "t1": "SUCCESS", "t2": "SUCCESS"}
    other.execute("COMMIT")
