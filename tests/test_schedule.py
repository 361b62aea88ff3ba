"""Execution rows of scheduled fires (exactly once) and the APScheduler timer, on real SQLite files."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from gitsync import state
from gitsync.schedule.timer import Scheduler
from gitsync.state import executions, fires, lost
from gitsync.state.database import Store, iso

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(tmp_path / "state.db")
    with db.atomic() as conn:
        state.upsert_source(conn, "s", "repo", "main", "", "", "c0")
    return db


def add_flow(store: Store, uid: str = "ns.f", commit: str = "c1", disabled: bool = False) -> int:
    namespace, flow_id = uid.rsplit(".", 1)
    row = state.RevisionRow(uid, namespace, flow_id, "s", commit, f"{flow_id}.yaml", "b", "a", "m", None, disabled)
    with store.atomic() as conn:
        return state.write_revision(conn, row, iso(T0))


def add_trigger(
    store: Store, flow: str = "ns.f", cron: str = "0 * * * *", registered: datetime = T0, **spec: Any
) -> str:
    uid = f"{flow}/t"
    seconds = len(cron.split()) == 6
    row = state.TriggerRow(uid, flow, "t", SCHEDULE, {"cron": cron, **spec}, cron, seconds, None, False)
    with store.atomic() as conn:
        state.upsert_trigger(conn, row, iso(registered))
    return uid


def rows(store: Store, uid: str = "ns.f/t") -> list[dict[str, Any]]:
    return store.query("SELECT * FROM executions WHERE trigger_uid = ? ORDER BY scheduled_at", (uid,))


def test_same_time_twice_writes_one_row(store: Store) -> None:
    add_flow(store)
    uid = add_trigger(store, inputs={"day": "mon"})
    first = fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=1), T0 + timedelta(hours=1))
    again = fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=1), T0 + timedelta(hours=1))
    assert first is not None and again is None
    (row,) = rows(store)
    assert row["state"] == "CREATED" and row["scheduled_at"] == "2024-01-01T13:00:00.000+00:00"
    assert row["inputs"] == '{"day":"mon"}'
    trigger = store.query_one("SELECT last_scheduled_at, next_fire FROM triggers")
    assert trigger == {
        "last_scheduled_at": "2024-01-01T13:00:00.000+00:00",
        "next_fire": "2024-01-01T14:00:00.000+00:00",
    }


def test_retired_paused_or_disabled_trigger_does_not_fire(store: Store) -> None:
    add_flow(store)
    uid = add_trigger(store)
    with store.atomic() as conn:
        conn.execute("UPDATE triggers SET paused = 1")
    assert fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=1), T0) is None
    add_flow(store, disabled=True)
    with store.atomic() as conn:
        conn.execute("UPDATE triggers SET paused = 0")
    assert fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=1), T0) is None
    with store.atomic() as conn:
        state.delete_triggers(conn, [uid])
    assert fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=1), T0) is None
    assert rows(store) == []


def test_overlapping_runs_queue_and_revision_is_pinned(store: Store) -> None:
    add_flow(store, commit="c1")
    uid = add_trigger(store)
    first = fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=1), T0)
    assert add_flow(store, commit="c2") == 2
    second = fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=2), T0)
    by_id = {row["id"]: row for row in rows(store)}
    assert (by_id[first]["state"], by_id[first]["revision"], by_id[first]["commit_sha"]) == ("CREATED", 1, "c1")
    assert (by_id[second]["state"], by_id[second]["revision"], by_id[second]["commit_sha"]) == ("QUEUED", 2, "c2")
    assert first < second  # ids sort by creation


def test_trigger_vars_and_listing(store: Store) -> None:
    add_flow(store)
    uid = add_trigger(store)
    execution_id = fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=1), T0)
    (listed,) = executions.list_executions(store, flow="ns.f")
    assert listed["id"] == execution_id and listed["trigger"] == uid and listed["task_runs"] == []
    assert listed["trigger_vars"] == {
        "date": "2024-01-01T13:00:00+00:00",
        "next": "2024-01-01T14:00:00+00:00",
        "previous": "2024-01-01T12:00:00+00:00",
    }
    assert {
        "flow",
        "revision",
        "commit",
        "state",
        "scheduled_at",
        "started_at",
        "ended_at",
        "inputs",
        "outputs",
    } <= set(listed)


def test_resolve_lost(store: Store) -> None:
    add_flow(store)
    uid = add_trigger(store)
    ids = [fires.create_scheduled_execution(store, uid, T0 + timedelta(hours=h), T0) for h in (1, 2, 3)]
    with store.atomic() as conn:
        conn.execute("UPDATE executions SET state = 'RUNNING' WHERE id = ?", (ids[0],))
    resolved = [r["id"] for r in lost.resolve_lost(store, None, [], T0)]
    assert resolved == [ids[0]]
    states = {row["id"]: (row["state"], row["error"]) for row in rows(store)}
    assert states[ids[0]] == ("FAILED", executions.WORKER_LOST)
    assert states[ids[1]][0] == "QUEUED" and states[ids[2]][0] == "QUEUED"
    assert store.query_one("SELECT state, context FROM outbox") == {"state": "failure", "context": "gitsync/ns.f"}
    assert [r["id"] for r in lost.resolve_lost(store, None, [], T0)] == []


@pytest.mark.parametrize(("policy", "expected"), [("ALL", 3), ("LAST", 1), ("NONE", 0)])
def test_fire_due_recovers_by_policy_once(store: Store, policy: str, expected: int) -> None:
    add_flow(store)
    add_trigger(store, registered=T0 - timedelta(hours=1), recoverMissedSchedules=policy)
    fires.create_scheduled_execution(store, "ns.f/t", T0, T0)
    now = T0 + timedelta(hours=3, seconds=30)
    assert len(fires.fire_due(store, now, recovering=True)) == expected
    assert fires.fire_due(store, now, recovering=True) == []
    assert len(rows(store)) == 1 + expected


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_scheduler_fires_every_second_reconciles_and_recovers(store: Store, tmp_path: Path) -> None:
    add_flow(store)
    add_flow(store, "ns.daily")
    now = datetime.now(UTC)
    uid = add_trigger(store, cron="*/1 * * * * *", registered=now, recoverMissedSchedules="ALL")
    add_trigger(store, "ns.daily", cron="0 3 * * *", registered=now)
    fired: list[str] = []
    scheduler = Scheduler(store, on_fire=fired.append)
    scheduler.start()
    try:
        assert len(scheduler.job_ids) == 2
        wait_for(lambda: len(rows(store, uid)) >= 3)
        scheduled = [row["scheduled_at"] for row in rows(store, uid)]
        assert len(scheduled) >= 3 and len(set(scheduled)) == len(scheduled)
        seconds = [datetime.fromisoformat(s) for s in scheduled]
        assert all(b - a == timedelta(seconds=1) for a, b in pairwise(seconds))
        with store.atomic() as conn:
            state.delete_triggers(conn, [uid])
        scheduler.reconcile()
        count = len(rows(store, uid))
        assert scheduler.job_ids == ["cron:UTC:m:0 3 * * *"]
    finally:
        scheduler.shutdown()
    time.sleep(1.2)
    assert len(rows(store, uid)) == count
    assert set(fired) == {row["id"] for row in rows(store, uid)}

    # the process stops; a trigger was active while it was down; a new Scheduler on the same file recovers
    add_flow(store, "ns.g")
    missed = add_trigger(store, "ns.g", cron="*/1 * * * * *", registered=datetime.now(UTC) - timedelta(seconds=5))
    reopened = Store(tmp_path / "state.db")
    restarted = Scheduler(reopened)
    restarted.start()
    restarted.shutdown()
    recovered = [row["scheduled_at"] for row in rows(reopened, missed)]
    assert len(recovered) >= 5 and len(set(recovered)) == len(recovered)
    assert fires.fire_due(reopened, datetime.now(UTC) - timedelta(seconds=1), recovering=True) == []
