"""The state package's execution, task-run and log functions, on a real SQLite file (no engine, no threads)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gitsync import state
from gitsync.state import control, executions, lost, task_runs
from gitsync.state.database import IN_CHUNK, Store, iso
from runner.engine.records import LogLine, TaskRunRecord
from runner.states import State

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(tmp_path / "state.db")
    with db.atomic() as conn:
        state.upsert_source(conn, "s", "repo", "main", "", "", "c0")
        row = state.RevisionRow("ns.f", "ns", "f", "s", "c1", "f.yaml", "b", "a", "m", "id: f", False)
        state.write_revision(conn, row, iso(T0))
    return db


def new(store: Store, **given: Any) -> str:
    fields: dict[str, Any] = {"flow_uid": "ns.f", "revision": 1, "commit": "c1", "inputs": {}, "source": "s"}
    return executions.create_execution(store, **(fields | given))


def set_state(store: Store, execution_id: str, state_: State) -> None:
    with store.atomic() as conn:
        conn.execute("UPDATE executions SET state = ? WHERE id = ?", (state_.value, execution_id))


def outbox(store: Store) -> list[tuple[str, str]]:
    return [(r["state"], r["description"]) for r in store.query("SELECT state, description FROM outbox ORDER BY id")]


def test_what_an_execution_pins(store: Store) -> None:
    assert executions.active_flow(store, "ns.f") == {"revision": 1, "commit_sha": "c1", "source": "s", "disabled": 0}
    assert executions.active_flow(store, "ns.nope") is None
    assert executions.revision_source(store, "ns.f", 1) == {"path": "f.yaml", "text": "id: f"}
    assert executions.revision_source(store, "ns.f", 2) is None
    assert executions.revision_commit(store, "ns.f", 1) == "c1"
    assert executions.revision_commit(store, "ns.f", 2) == ""


def test_created_execution_row(store: Store) -> None:
    execution_id = new(store, inputs={"a": 1}, labels={"k": "v"}, trigger={"x": 2}, parent="p")
    row = executions.get_execution(store, execution_id)
    assert row is not None
    assert (row["state"], row["inputs"], row["labels"], row["trigger_vars"]) == (
        "CREATED",
        '{"a":1}',
        '{"k":"v"}',
        '{"x":2}',
    )
    assert (row["parent_execution"], row["source"], row["attempt"]) == ("p", "s", 1)
    assert executions.execution_state(store, execution_id) == "CREATED"
    assert executions.execution_state(store, "nope") is None
    assert executions.get_execution(store, "nope") is None
    assert executions.created_executions(store) == [execution_id]


def test_admit_queues_behind_an_active_run_of_the_same_trigger(store: Store) -> None:
    first, second = new(store, trigger_uid="ns.f/t"), new(store, trigger_uid="ns.f/t")
    rows = {i: executions.get_execution(store, i) or {} for i in (first, second)}
    assert executions.admit(store, rows[first]) is None
    assert executions.admit(store, rows[second]) == State.QUEUED
    assert executions.execution_state(store, first) == "RUNNING"
    assert executions.execution_state(store, second) == "QUEUED"
    assert executions.oldest_queued(store, "ns.f") == [second]
    executions.release_queued(store, second)
    assert executions.execution_state(store, second) == "CREATED"
    assert executions.oldest_queued(store, "ns.f") == []


@pytest.mark.parametrize("over_limit", [State.QUEUED, State.CANCELLED, State.FAILED])
def test_admit_applies_the_concurrency_limit(store: Store, over_limit: State) -> None:
    running, waiting = new(store), new(store)
    assert executions.admit(store, executions.get_execution(store, running) or {}, 1, over_limit) is None
    assert executions.admit(store, executions.get_execution(store, waiting) or {}, 1, over_limit) == over_limit
    row = executions.get_execution(store, waiting)
    assert row is not None and row["state"] == over_limit.value
    assert row["error"] == "flow concurrency limit 1 reached"
    assert (row["ended_at"] is None) == (over_limit == State.QUEUED)


def test_admit_writes_the_first_running_state_and_its_status_with_the_owner(store: Store) -> None:
    first, second = new(store, trigger_uid="ns.f/t"), new(store, trigger_uid="ns.f/t")
    admitted = executions.Admitted(T0, {"team": "data", "system.correlationId": first})
    assert executions.admit(store, executions.get_execution(store, first) or {}, admitted=admitted) is None
    row = executions.get_execution(store, first)
    assert row is not None
    assert (row["state"], row["started_at"], json.loads(row["labels"])) == ("RUNNING", iso(T0), admitted.labels)
    assert outbox(store) == [("pending", f"running (execution {first})")]
    refused = executions.admit(store, executions.get_execution(store, second) or {}, admitted=admitted)
    assert refused == State.QUEUED  # queued behind the first: no state of its own, no status
    assert outbox(store) == [("pending", f"running (execution {first})")]


def test_record_state_writes_the_commit_status_in_the_same_transaction(store: Store) -> None:
    execution_id = new(store)
    executions.record_state(store, execution_id, State.RUNNING, {"started_at": T0})
    ended = {"ended_at": T0 + timedelta(seconds=2), "outputs": {"o": 1}, "error": "boom"}
    executions.record_state(store, execution_id, State.FAILED, ended)
    row = executions.get_execution(store, execution_id)
    assert row is not None and (row["state"], row["outputs"], row["error"]) == ("FAILED", '{"o":1}', "boom")
    assert outbox(store) == [("pending", f"running (execution {execution_id})"), ("failure", "failed in 2.0s: boom")]


def test_record_state_posts_nothing_for_a_source_that_does_not_report(store: Store) -> None:
    execution_id = new(store)
    executions.record_state(store, execution_id, State.RUNNING, {"started_at": T0}, frozenset({"other"}))
    assert outbox(store) == []


def test_a_running_state_after_a_kill_request_stays_killing(store: Store) -> None:
    execution_id = new(store)
    set_state(store, execution_id, State.RUNNING)
    assert control.request_kill(store, execution_id) == (State.RUNNING, State.KILLING)
    executions.record_state(store, execution_id, State.RUNNING, {})
    assert executions.execution_state(store, execution_id) == "KILLING"
    assert control.kill_requested(store, [execution_id, "gone"]) == [execution_id, "gone"]


def test_kill_before_start_ended_and_unknown(store: Store) -> None:
    queued = new(store)
    set_state(store, queued, State.QUEUED)
    assert control.request_kill(store, queued) == (State.QUEUED, State.KILLED)
    row = executions.get_execution(store, queued)
    assert row is not None and row["error"] == "killed before it started" and row["ended_at"]
    assert control.request_kill(store, queued) == (State.KILLED, None)
    assert control.request_kill(store, "nope") == (None, None)


def test_kill_requested_reads_many_ids_in_chunks(store: Store) -> None:
    ids = [new(store) for _ in range(IN_CHUNK + 3)]
    set_state(store, ids[-1], State.RUNNING)
    control.request_kill(store, ids[-1])
    assert control.kill_requested(store, ids) == [ids[-1]]
    assert len(executions.fire_times(store, ids)) == len(ids)


def test_resume_request_is_taken_once(store: Store) -> None:
    execution_id = new(store)
    assert control.request_resume(store, execution_id, {"ok": True}) == State.CREATED  # not paused: not written
    assert control.take_resume(store, execution_id) == (False, None)
    set_state(store, execution_id, State.PAUSED)
    assert control.request_resume(store, execution_id, {"ok": True}) == State.PAUSED
    assert control.take_resume(store, execution_id) == (False, {"ok": True})
    assert control.take_resume(store, execution_id) == (False, None)
    assert control.request_resume(store, "nope", {}) is None
    assert control.take_resume(store, "nope") == (True, None)


def test_retry_copies_the_execution_into_the_next_attempt(store: Store) -> None:
    first = new(store, inputs={"a": 1})
    second = executions.retry_execution(store, first)
    third = executions.retry_execution(store, second)
    rows = [executions.get_execution(store, i) or {} for i in (first, second, third)]
    assert [r["state"] for r in rows] == ["RETRIED", "RETRIED", "CREATED"]
    assert [(r["original_id"], r["attempt"], r["inputs"]) for r in rows[1:]] == [
        (first, 2, '{"a":1}'),
        (first, 3, '{"a":1}'),
    ]


def test_finish_keeps_an_error_already_recorded(store: Store) -> None:
    execution_id = new(store)
    executions.record_state(store, execution_id, State.RUNNING, {"error": "first"})
    executions.finish_execution(store, execution_id, State.FAILED, "internal error")
    row = executions.get_execution(store, execution_id)
    assert row is not None and (row["state"], row["error"]) == ("FAILED", "first") and row["ended_at"]


def record(execution_id: str, state_: State, **fields: Any) -> TaskRunRecord:
    return TaskRunRecord("tr1", execution_id, "t", "io.kestra.Log", None, None, None, 1, state_, **fields)


def test_task_runs_and_logs_written_together_and_read_back(store: Store) -> None:
    execution_id = new(store)
    rows = [task_runs.task_run_row(record(execution_id, State.RUNNING, started_at=T0))]
    rows.append(task_runs.task_run_row(record(execution_id, State.SUCCESS, started_at=T0, outputs={"v": 1})))
    logs = [task_runs.log_row(LogLine(execution_id, "tr1", T0, "INFO", f"line {n}")) for n in range(2)]
    task_runs.write(store, rows, logs)
    task_runs.write(store, [], [])
    (run,) = task_runs.task_runs(store, execution_id)
    assert (run["task_id"], run["state"], run["outputs"]) == ("t", "SUCCESS", {"v": 1})
    lines = task_runs.logs_after(store, execution_id)
    assert [(line["task_id"], line["message"]) for line in lines] == [("t", "line 0"), ("t", "line 1")]
    assert [line["message"] for line in task_runs.logs_after(store, execution_id, lines[0]["id"])] == ["line 1"]


def test_resolve_lost_fails_the_unfinished_task_runs_only(store: Store) -> None:
    execution_id = new(store)
    set_state(store, execution_id, State.RUNNING)
    done = TaskRunRecord("a", execution_id, "a", "io.kestra.Log", None, None, None, 1, State.SUCCESS)
    running = TaskRunRecord("b", execution_id, "b", "io.kestra.Log", None, None, None, 1, State.RUNNING)
    task_runs.write(store, [task_runs.task_run_row(done), task_runs.task_run_row(running)], [])
    assert [r["id"] for r in lost.resolve_lost(store, None, [], T0)] == [execution_id]
    states = {r["task_id"]: (r["state"], r["error"]) for r in task_runs.task_runs(store, execution_id)}
    assert states == {"a": ("SUCCESS", None), "b": ("FAILED", executions.WORKER_LOST)}


def test_state_lists_come_from_state() -> None:
    assert all(isinstance(s, State) for s in executions.INTERRUPTED_STATES + executions.SLOT_STATES)
    assert executions.sql_states([State.RUNNING, State.PAUSED]) == "'RUNNING','PAUSED'"


def test_the_oldest_queued_execution_is_found_through_the_state_index_not_the_flows_rows(store: Store) -> None:
    """Every execution's end looks for a queued one of its flow: that read must not grow with the flow's history."""
    plan = store.query("EXPLAIN QUERY PLAN " + executions.OLDEST_QUEUED, ("ns.f",))
    assert any("executions_state" in row["detail"] for row in plan), plan
