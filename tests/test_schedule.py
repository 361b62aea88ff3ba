"""Execution rows of scheduled fires (exactly once) and the timer, on real SQLite files."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import installed
import pytest

from gitsync import state
from gitsync.schedule.conditions import ScheduleConditions
from gitsync.schedule.timer import Scheduler
from gitsync.state import executions, fires, lost
from gitsync.state.database import Store, iso, loads
from runner.expressions.renderer import Renderer

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


# -- conditions and `when` (KESTRA_SPEC §9.1): a refused time is skipped, decided at given `now`s ---------------

C = "io.kestra.plugin.core.condition."
JAN = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def _judge() -> ScheduleConditions:
    return ScheduleConditions(installed.registry(), Renderer().evaluate)


def _fired_days(store: Store, uid: str, start: datetime, days: int) -> list[int]:
    """The days of the month of the fires recorded to run (the first CREATED, the others QUEUED behind it)."""
    fires.fire_due(store, start + timedelta(days=days), judge=_judge())
    return [datetime.fromisoformat(r["scheduled_at"]).day for r in rows(store, uid) if r["state"] != "FAILED"]


DAILY_CASES: list[tuple[str, dict[str, Any], list[int]]] = [
    ("weekend", {"conditions": [{"type": C + "Weekend"}]}, [6, 7, 13, 14, 20, 21, 27, 28]),
    ("monday", {"conditions": [{"type": C + "DayWeek", "dayOfWeek": "MONDAY"}]}, [1, 8, 15, 22, 29]),
    (
        "last-saturday",
        {"conditions": [{"type": C + "DayWeekInMonth", "dayOfWeek": "SATURDAY", "dayInMonth": "LAST"}]},
        [27],
    ),
    (
        "second-tuesday",
        {"conditions": [{"type": C + "DayWeekInMonth", "dayOfWeek": "TUESDAY", "dayInMonth": "SECOND"}]},
        [9],
    ),
    (
        "not-weekend",
        {"conditions": [{"type": C + "Not", "conditions": [{"type": C + "Weekend"}]}]},
        [d for d in range(1, 32) if d not in (6, 7, 13, 14, 20, 21, 27, 28)],
    ),
    (
        "monday-or-friday",
        {
            "conditions": [
                {
                    "type": C + "Or",
                    "conditions": [{"type": C + "DayWeek", "dayOfWeek": d} for d in ("MONDAY", "FRIDAY")],
                }
            ]
        },
        [1, 5, 8, 12, 15, 19, 22, 26, 29],
    ),
    (
        "between-dates",
        {
            "conditions": [
                {"type": C + "DateTimeBetween", "after": "2024-01-10T00:00:00Z", "before": "2024-01-12T23:00:00Z"}
            ]
        },
        [10, 11, 12],
    ),
    (
        "legacy-names-and-anded",
        {
            "scheduleConditions": [
                {"type": "io.kestra.core.models.conditions.types.WeekendCondition"},
                {"type": "io.kestra.core.models.conditions.types.DayWeekCondition", "dayOfWeek": "SUNDAY"},
            ]
        },
        [7, 14, 21, 28],
    ),
    (
        "expression",
        {"conditions": [{"type": C + "Expression", "expression": "{{ trigger.date | date('d') == '15' }}"}]},
        [15],
    ),
    ("when", {"when": "{{ trigger.date | date('EEEE') == 'Wednesday' }}"}, [3, 10, 17, 24, 31]),
    (
        "when-and-conditions",
        {"when": "{{ trigger.date > '2024-01-21' }}", "conditions": [{"type": C + "Weekend"}]},
        [21, 27, 28],
    ),
    # conditions on an upstream execution are not schedule conditions: Kestra leaves them out of a Schedule
    (
        "flow-condition-ignored",
        {"conditions": [{"type": C + "ExecutionFlow", "namespace": "a", "flowId": "b"}]},
        [*range(1, 32)],
    ),
]


@pytest.mark.parametrize(("spec", "days"), [c[1:] for c in DAILY_CASES], ids=[c[0] for c in DAILY_CASES])
def test_schedule_conditions_skip_the_fires_they_refuse(store: Store, spec: dict[str, Any], days: list[int]) -> None:
    add_flow(store)
    uid = add_trigger(store, cron="0 11 * * *", registered=JAN, **spec)
    assert _fired_days(store, uid, JAN, 31) == days
    (trigger,) = store.query("SELECT last_scheduled_at FROM triggers WHERE uid = ?", (uid,))
    assert trigger["last_scheduled_at"] == "2024-01-31T11:00:00.000+00:00"  # refused times are decided, not pending


def test_public_holidays_by_country_and_subdivision(store: Store) -> None:
    add_flow(store)
    add_flow(store, "ns.g")
    may = datetime(2024, 5, 1, tzinfo=UTC) - timedelta(hours=1)
    france = add_trigger(
        store, cron="0 11 * * *", registered=may, conditions=[{"type": C + "PublicHoliday", "country": "FR"}]
    )
    assert _fired_days(store, france, may, 31) == [1, 8, 9, 20]  # Labour, Victory, Ascension, Pentecost Monday
    october = datetime(2024, 10, 30, tzinfo=UTC)
    national = add_trigger(
        store, flow="ns.g", cron="0 11 * * *", registered=october,
        conditions=[{"type": C + "PublicHoliday", "country": "DE"}],
    )  # fmt: skip
    assert _fired_days(store, national, october, 2) == []  # Reformation Day is not Germany's...
    add_flow(store, "ns.h")
    brandenburg = add_trigger(
        store, flow="ns.h", cron="0 11 * * *", registered=october,
        conditions=[{"type": C + "PublicHoliday", "country": "DE", "subDivision": "DE-BB"}],
    )  # fmt: skip
    assert _fired_days(store, brandenburg, october, 2) == [31]  # ...but Brandenburg's


def test_time_between_keeps_the_hours_inside(store: Store) -> None:
    add_flow(store)
    spec = {"conditions": [{"type": C + "TimeBetween", "after": "09:00:00Z", "before": "12:00:00+00:00"}]}
    uid = add_trigger(store, cron="0 * * * *", registered=JAN, **spec)
    fires.fire_due(store, JAN + timedelta(hours=23, minutes=30), judge=_judge())
    assert [datetime.fromisoformat(r["scheduled_at"]).hour for r in rows(store, uid)] == [10, 11]


def test_next_and_previous_name_the_times_the_conditions_accept(store: Store) -> None:
    add_flow(store)
    uid = add_trigger(store, cron="0 11 * * *", registered=JAN, conditions=[{"type": C + "Weekend"}])
    fires.fire_due(store, JAN + timedelta(days=8), judge=_judge())
    saturday, sunday = (loads(r["trigger_vars"]) for r in rows(store, uid))
    assert saturday == {
        "date": "2024-01-06T11:00:00+00:00",
        "next": "2024-01-07T11:00:00+00:00",
        "previous": "2023-12-31T11:00:00+00:00",
    }
    assert (sunday["previous"], sunday["next"]) == ("2024-01-06T11:00:00+00:00", "2024-01-13T11:00:00+00:00")


def test_a_condition_that_cannot_judge_records_a_failed_fire_that_says_why(store: Store) -> None:
    add_flow(store)
    spec = {"conditions": [{"type": C + "Expression", "expression": "{{ trigger.dat | date('d') == '1' }}"}]}
    uid = add_trigger(store, cron="0 11 * * *", registered=JAN, **spec)
    assert fires.fire_due(store, JAN + timedelta(days=1), judge=_judge()) == []  # nothing to run
    (row,) = rows(store, uid)
    assert row["state"] == "FAILED" and row["ended_at"]
    assert row["error"].startswith("Schedule trigger 't' could not judge its fire at 2024-01-01T11:00:00+00:00:")
    assert "condition Expression cannot be evaluated" in row["error"] and "trigger.dat" in row["error"]
    assert fires.fire_due(store, JAN + timedelta(days=1), judge=_judge()) == []  # decided once, not again
    assert len(rows(store, uid)) == 1


def test_reconcile_moves_the_timer_to_the_new_groups_next_time(store: Store) -> None:
    """The timer's next step was the daily time's; a trigger added and reconciled fires at its own times, one
    retired stops, and a scheduler started again on the same store goes on (APScheduler's job is its step)."""
    add_flow(store, "ns.daily")
    add_trigger(store, "ns.daily", cron="0 3 * * *", registered=datetime.now(UTC))
    scheduler = Scheduler(store)
    scheduler.start()
    try:
        add_flow(store)
        uid = add_trigger(store, cron="*/1 * * * * *", registered=datetime.now(UTC), recoverMissedSchedules="NONE")
        scheduler.reconcile()
        wait_for(lambda: len(rows(store, uid)) >= 2)
        assert len(rows(store, uid)) >= 2
        with store.atomic() as conn:
            state.delete_triggers(conn, [uid])
        scheduler.reconcile()
        count = len(rows(store, uid))
        time.sleep(1.2)
        assert len(rows(store, uid)) == count
    finally:
        scheduler.shutdown()
    again = Scheduler(store)
    with store.atomic() as conn:
        state.upsert_trigger(
            conn,
            state.TriggerRow(uid, "ns.f", "t", SCHEDULE, {"cron": "*/1 * * * * *"}, "*/1 * * * * *", True, None, False),
            iso(datetime.now(UTC)),
        )
    again.start()
    try:
        wait_for(lambda: len(rows(store, uid)) >= count + 2)
        assert len(rows(store, uid)) >= count + 2
    finally:
        again.shutdown()
    assert store.query("SELECT id FROM executions WHERE state = 'AHEAD'") == []
