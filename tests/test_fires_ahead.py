"""Scheduled fires written ahead of their time (`state.ahead.prepare_fires` / `release_due`), on real SQLite files:
hidden until released, released once, decided again when a sync changed the trigger in between, and exactly once
across a SIGKILL of the process that wrote them (a real subprocess). Times are given, never waited for."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from runtime import Runtime, gitsync_cli

from gitsync import state
from gitsync.schedule.timer import Scheduler
from gitsync.state import ahead as fires_ahead
from gitsync.state import executions, fires
from gitsync.state.database import Store, iso, loads
from runner.states import State

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"
HOURLY = ("0 * * * *", False, "UTC")
AT = T0 + timedelta(hours=1)  # the next fire of an hourly trigger that fired T0
JUST_AFTER = AT + timedelta(milliseconds=50)


def add_flow(store: Store, uid: str = "ns.f", commit: str = "c1", disabled: bool = False) -> int:
    namespace, flow_id = uid.rsplit(".", 1)
    row = state.RevisionRow(uid, namespace, flow_id, "s", commit, f"{flow_id}.yaml", "b", "a", "m", None, disabled)
    with store.atomic() as conn:
        return state.write_revision(conn, row, iso(T0))


def add_trigger(store: Store, flow: str = "ns.f", cron: str = "0 * * * *", **spec: Any) -> str:
    uid = f"{flow}/t"
    row = state.TriggerRow(uid, flow, "t", SCHEDULE, {"cron": cron, **spec}, cron, False, None, False)
    with store.atomic() as conn:
        state.upsert_trigger(conn, row, iso(T0 - timedelta(hours=1)))
    return uid


def rows(store: Store, uid: str = "ns.f/t") -> list[dict[str, Any]]:
    """Every row of the trigger, AHEAD ones too (what the file holds, not what a user is shown)."""
    return store.query("SELECT * FROM executions WHERE trigger_uid = ? ORDER BY scheduled_at", (uid,))


def bookkeeping(store: Store, uid: str = "ns.f/t") -> tuple[str, str]:
    """(last scheduled time decided, next fire time) as `gitsync triggers` and the HTTP API show them."""
    (row,) = [row for row in state.list_triggers(store) if row["uid"] == uid]
    return row["last_scheduled_at"], row["next_fire"]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(tmp_path / "state.db")
    with db.atomic() as conn:
        state.upsert_source(conn, "s", "repo", "main", "", "", "c0")
    add_flow(db)
    add_trigger(db, inputs={"v": 1})
    assert len(fires.fire_due(db, T0)) == 1  # T0 fired: the next time to decide is AT
    return db


def test_a_fire_written_ahead_is_hidden_until_its_time_then_released_once(store: Store, tmp_path: Path) -> None:
    prepared = fires_ahead.prepare_fires(store, AT, [HOURLY])
    (ahead,) = prepared.ids
    assert bookkeeping(store) == (iso(T0), iso(AT))  # writing ahead decides nothing
    assert executions.get_execution(store, ahead) is None
    assert [r["scheduled_at"] for r in executions.list_executions(store)] == [iso(T0)]
    listed = gitsync_cli((str(tmp_path / "state.db"), str(tmp_path / "data")), "executions", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert [e["scheduled_at"] for e in json.loads(listed.stdout)] == [iso(T0)]
    shown = gitsync_cli((str(tmp_path / "state.db"), str(tmp_path / "data")), "executions", "--state", "AHEAD")
    assert ahead not in shown.stdout
    assert fires_ahead.release_due(store, prepared, [HOURLY], now=AT - timedelta(seconds=1)) == []  # not before AT
    assert executions.get_execution(store, ahead) is None

    assert fires_ahead.release_due(store, prepared, [HOURLY], now=JUST_AFTER) == [ahead]
    row = executions.get_execution(store, ahead)
    assert row is not None
    assert (row["state"], row["scheduled_at"], row["created_at"]) == ("QUEUED", iso(AT), iso(JUST_AFTER))
    assert loads(row["inputs"]) == {"v": 1} and loads(row["trigger_vars"])["date"] == "2024-01-01T13:00:00+00:00"
    assert bookkeeping(store) == (iso(AT), iso(AT + timedelta(hours=1)))
    assert fires_ahead.release_due(store, prepared, [HOURLY], now=JUST_AFTER) == []
    assert fires.fire_due(store, JUST_AFTER, recovering=True) == []
    assert [r["id"] for r in rows(store)][1:] == [ahead]


def test_released_like_fire_due_writes_it(tmp_path: Path) -> None:
    """The released row equals the one fire_due writes for the same trigger and time (bar id and created_at)."""
    written: list[dict[str, Any]] = []
    for name, ahead in (("direct", False), ("ahead", True)):
        db = Store(tmp_path / f"{name}.db")
        with db.atomic() as conn:
            state.upsert_source(conn, "s", "repo", "main", "", "", "c0")
        add_flow(db)
        add_trigger(db, inputs={"day": "mon"}, recoverMissedSchedules="ALL")
        fires.fire_due(db, T0)
        prepared = fires_ahead.prepare_fires(db, AT, [HOURLY]) if ahead else None
        fires_ahead.release_due(db, prepared, [HOURLY], now=JUST_AFTER)
        written.append({k: v for k, v in rows(db)[-1].items() if k not in ("id", "created_at")})
        written[-1]["bookkeeping"] = bookkeeping(db)
    assert written[0] == written[1]


@pytest.mark.parametrize(
    "change",
    ["retired", "paused", "flow disabled", "flow changed", "cron changed"],
)
def test_a_change_between_writing_ahead_and_the_fire_time_decides_from_the_trigger_as_it_is(
    store: Store, change: str
) -> None:
    """A trigger retired, paused or disabled after its fire was written ahead does not run it; one whose flow or
    cron changed fires what it says now (the new revision), never what was written ahead."""
    prepared = fires_ahead.prepare_fires(store, AT, [HOURLY])
    (ahead,) = prepared.ids
    assert fires_ahead.prepare_fires(store, AT, [HOURLY]).ids == []  # written once
    with store.atomic() as conn:
        if change == "retired":
            state.delete_triggers(conn, ["ns.f/t"])
        elif change == "paused":
            conn.execute("UPDATE triggers SET paused = 1")
    if change == "flow disabled":
        add_flow(store, commit="c2", disabled=True)
    elif change == "flow changed":
        add_flow(store, commit="c2")
    elif change == "cron changed":
        add_flow(store, commit="c2")
        add_trigger(store, cron="30 * * * *", inputs={"v": 2})
        fires.fire_due(store, AT - timedelta(minutes=10), uids=["ns.f/t"], recovering=True)  # the reconcile
    if change in ("retired", "cron changed"):  # the sync deleted the fire written for the trigger as it was
        assert [r["id"] for r in rows(store) if r["state"] == "AHEAD"] == []
    released = fires_ahead.release_due(store, prepared, [HOURLY, ("30 * * * *", False, "UTC")], now=JUST_AFTER)
    assert ahead not in released
    assert all(r["state"] != "AHEAD" for r in rows(store))
    at_fire = [r for r in rows(store) if r["scheduled_at"] == iso(AT)]
    if change == "flow changed":
        (row,) = at_fire
        assert row["id"] in released and (row["revision"], row["commit_sha"]) == (2, "c2")
    else:
        assert at_fire == []
    if change == "cron changed":
        half_past = fires.fire_due(store, AT + timedelta(minutes=30), group=("30 * * * *", False, "UTC"))
        assert [(r["scheduled_at"], loads(r["inputs"])) for r in rows(store) if r["id"] in half_past] == [
            (iso(AT + timedelta(minutes=30)), {"v": 2})
        ]


def test_a_sync_that_changes_the_flow_after_its_fire_was_written_ahead_runs_the_new_revision(tmp_path: Path) -> None:
    flow = """\
        id: hourly
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: "{message}"
        triggers:
          - id: every_hour
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "0 * * * *"
            disabled: {disabled}
        """
    runtime = Runtime(tmp_path)
    try:
        runtime.deploy({"hourly.yaml": flow.format(message="first", disabled="false")})
        now = datetime.now(UTC)
        fires.fire_due(runtime.store, now, recovering=True)
        (trigger,) = fires.schedule_triggers(runtime.store)
        at = datetime.fromisoformat(trigger["next_fire"])
        prepared = fires_ahead.prepare_fires(runtime.store, at, [HOURLY])
        (ahead,) = prepared.ids
        runtime.deploy({"hourly.yaml": flow.format(message="second", disabled="false")})
        released = fires_ahead.release_due(runtime.store, prepared, [HOURLY], now=at + timedelta(milliseconds=5))
        (row,) = [r for r in runtime.store.query("SELECT * FROM executions") if r["scheduled_at"] == iso(at)]
        assert row["id"] in released and row["id"] != ahead and row["revision"] == 2

        nxt = at + timedelta(hours=1)
        prepared = fires_ahead.prepare_fires(runtime.store, nxt, [HOURLY])
        assert len(prepared.ids) == 1
        runtime.deploy({"hourly.yaml": flow.format(message="second", disabled="true")})
        assert fires_ahead.release_due(runtime.store, prepared, [HOURLY], now=nxt + timedelta(milliseconds=5)) == []
        assert runtime.store.query("SELECT id FROM executions WHERE scheduled_at = ?", (iso(nxt),)) == []
    finally:
        runtime.close()


def test_a_missed_time_is_not_written_ahead_and_late_fires_are_skipped_as_before(store: Store) -> None:
    """Catch-up is unchanged: a trigger with earlier undecided times is left to fire_due (all of them, oldest
    first); a release later than lateMaximumDelay skips the time as late, as fire_due would."""
    three = T0 + timedelta(hours=3)
    assert fires_ahead.prepare_fires(store, three, [HOURLY]).ids == []  # 13:00 and 14:00 are undecided
    released = fires_ahead.release_due(store, None, [HOURLY], now=three + timedelta(seconds=1))
    assert [r["scheduled_at"] for r in rows(store) if r["id"] in released] == [
        iso(T0 + timedelta(hours=h)) for h in (1, 2, 3)
    ]

    add_flow(store, "ns.late")
    late = add_trigger(store, "ns.late", lateMaximumDelay="PT10S")
    fires.fire_due(store, three + timedelta(seconds=1), recovering=True)
    four = T0 + timedelta(hours=4)
    prepared = fires_ahead.prepare_fires(store, four, [HOURLY])
    assert len(prepared.ids) == 2
    released = fires_ahead.release_due(store, prepared, [HOURLY], now=four + timedelta(seconds=11))
    assert [r["scheduled_at"] for r in rows(store) if r["id"] in released] == [iso(four)]  # ns.f has no delay
    assert [r["scheduled_at"] for r in rows(store, late)] == [iso(three)]  # 16:00 was 11 s late: skipped
    assert bookkeeping(store, late) == (iso(four), iso(four + timedelta(hours=1)))


SCRIPT = """
import os, signal, sys
from datetime import datetime, timedelta
from gitsync.state import ahead
from gitsync.state.database import Store
store = Store(sys.argv[1])
at = datetime.fromisoformat(sys.argv[2])
prepared = ahead.prepare_fires(store, at, [("0 * * * *", False, "UTC")], chunk=1)
print(",".join(prepared.ids), flush=True)
def killed(ids):
    print(",".join(ids), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[3] == "release":
    ahead.release_due(store, prepared, [], now=at + timedelta(milliseconds=5), on_fired=killed)
os.kill(os.getpid(), signal.SIGKILL)
"""
"""Write the fires at argv[2] ahead, one transaction each, then SIGKILL itself (argv[3] "release": once the first
of them is released and handed on). Prints the ids written ahead, then those released."""


def killed_while_firing(tmp_path: Path, names: list[str], policy: str, step: str) -> tuple[Store, list[list[str]]]:
    """Hourly triggers of these flows that fired T0, a process that writes AT ahead and is killed (`SCRIPT`): the
    state file reopened, and the lines the process printed."""
    db = tmp_path / "state.db"
    store = Store(db)
    with store.atomic() as conn:
        state.upsert_source(conn, "s", "repo", "main", "", "", "c0")
    for name in names:
        add_flow(store, name)
        add_trigger(store, name, recoverMissedSchedules=policy)
    fires.fire_due(store, T0)
    store.close()
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(db), AT.isoformat(), step], capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return Store(db), [line.split(",") for line in killed.stdout.split()]


def restart(store: Store) -> None:
    restarted = Scheduler(store)
    restarted.start()
    restarted.shutdown()
    assert store.query("SELECT id FROM executions WHERE state = 'AHEAD'") == []


@pytest.mark.parametrize(("policy", "at_fires"), [("ALL", 1), ("LAST", 0), ("NONE", 0)])
def test_fires_written_ahead_by_a_killed_process_decide_nothing(tmp_path: Path, policy: str, at_fires: int) -> None:
    """SIGKILL after writing ahead, before the time: the restart deletes what was written ahead and decides the
    time as a missed one (recoverMissedSchedules), so it fires exactly once (ALL) or not at all (LAST, NONE)."""
    reopened, [written] = killed_while_firing(tmp_path, ["ns.a", "ns.b"], policy, "prepare")
    ahead = reopened.query("SELECT id FROM executions WHERE state = 'AHEAD'")
    assert sorted(r["id"] for r in ahead) == sorted(written) and len(written) == 2

    restart(reopened)
    for name in ("ns.a", "ns.b"):
        times = [r["scheduled_at"] for r in rows(reopened, f"{name}/t")]
        assert len(times) == len(set(times))
        assert times.count(iso(AT)) == at_fires
        assert not set(written) & {r["id"] for r in rows(reopened, f"{name}/t")}
        last, _ = bookkeeping(reopened, f"{name}/t")
        assert last >= max(times)  # fired or skipped: decided


@pytest.mark.parametrize(("policy", "at_fires"), [("ALL", 1), ("LAST", 0), ("NONE", 0)])
def test_a_release_killed_between_its_transactions_keeps_what_it_released(
    tmp_path: Path, policy: str, at_fires: int
) -> None:
    """SIGKILL once the first transaction of a release committed and its fire was handed on: that fire stands (it
    is not fired again), the fires not yet released decided nothing and their time is decided as a missed one."""
    names = ["ns.a", "ns.b", "ns.c"]
    reopened, [written, [released]] = killed_while_firing(tmp_path, names, policy, "release")
    assert len(written) == 3 and released in written
    states = {r["id"]: r["state"] for r in reopened.query("SELECT id, state FROM executions")}
    assert [states[i] for i in written].count("AHEAD") == 2 and states[released] == "QUEUED"

    restart(reopened)
    for name in names:
        at_times = [r["id"] for r in rows(reopened, f"{name}/t") if r["scheduled_at"] == iso(AT)]
        times = [r["scheduled_at"] for r in rows(reopened, f"{name}/t")]
        assert len(times) == len(set(times))
        if released in at_times:
            assert at_times == [released]
        else:
            assert len(at_times) == at_fires and not set(at_times) & set(written)
        last, _ = bookkeeping(reopened, f"{name}/t")
        assert last >= max(times)


def test_the_overlap_check_finds_a_triggers_active_runs_through_their_index(store: Store) -> None:
    """Whether a fire is QUEUED (or a run admitted) is looked up in the index of the executions not ended by
    trigger, never by walking the trigger's history (an every-second trigger ends 86,400 runs a day)."""
    params = {"at": iso(AT), "created_at": iso(AT), "trigger_uid": "ns.f/t", "id": "x", "flow_uid": "ns.f"}
    params |= {"revision": 1, "commit_sha": "c1", "source": "s", "scheduled_at": iso(AT), "inputs": "{}"}
    params |= {"trigger_vars": "{}", "after": 0, "last": 10}
    for sql in (fires_ahead._RELEASE_SQL, fires_ahead._RELEASE_CHECKED_SQL, fires._INSERT_SQL):
        plan = " | ".join(r["detail"] for r in store.query("EXPLAIN QUERY PLAN " + sql, params))
        assert "USING INDEX executions_trigger_open (trigger_uid=?)" in plan, plan
    plan = " | ".join(r["detail"] for r in store.query("EXPLAIN QUERY PLAN " + executions.EARLIER_ACTIVE, ("t", "x")))
    assert "USING INDEX executions_trigger_open (trigger_uid=?)" in plan, plan


def test_a_release_writes_only_the_execution_rows(store: Store) -> None:
    """The bookkeeping of a fire is written with it ahead of its time, so its release writes no trigger row (10,000
    of them took a fifth of the release's time); what `gitsync triggers` shows moves only with the release."""
    add_flow(store, "ns.g")
    add_trigger(store, "ns.g")
    fires.fire_due(store, T0)
    prepared = fires_ahead.prepare_fires(store, AT, [HOURLY])
    assert len(prepared.ids) == 2
    assert bookkeeping(store) == bookkeeping(store, "ns.g/t") == (iso(T0), iso(AT))
    store.query("CREATE TEMP TABLE written (uid TEXT)")
    store.query(
        "CREATE TEMP TRIGGER bookkeeping AFTER UPDATE ON triggers BEGIN INSERT INTO written VALUES (new.uid); END"
    )
    assert sorted(fires_ahead.release_due(store, prepared, [HOURLY], now=JUST_AFTER)) == sorted(prepared.ids)
    assert store.query("SELECT uid FROM written") == []
    assert bookkeeping(store) == bookkeeping(store, "ns.g/t") == (iso(AT), iso(AT + timedelta(hours=1)))


def test_a_release_leaves_the_checkpoint_to_the_next_write(store: Store, tmp_path: Path) -> None:
    """The release's commit does not copy the WAL into the database file, however far the WAL has grown (SQLite
    checkpoints in the commit that crosses `wal_autocheckpoint`); the next write does. The released rows are read
    from the WAL meanwhile, by this process and by any other."""
    database = tmp_path / "state.db"
    store.query("PRAGMA wal_autocheckpoint = 1")  # every commit crosses it
    prepared = fires_ahead.prepare_fires(store, AT, [HOURLY])
    before = database.read_bytes()
    (released,) = fires_ahead.release_due(store, prepared, [HOURLY], now=JUST_AFTER)
    assert database.read_bytes() == before
    assert store.query("PRAGMA wal_autocheckpoint") == [{"wal_autocheckpoint": 1}]
    shown = gitsync_cli((str(database), str(tmp_path / "data")), "executions", "--format", "json")
    assert released in [e["id"] for e in json.loads(shown.stdout)], shown.stderr
    written = database.read_bytes()
    assert len(fires_ahead.prepare_fires(store, AT + timedelta(hours=1), [HOURLY]).ids) == 1
    assert database.read_bytes() != written


def test_writing_ahead_a_later_time_before_the_earlier_one_was_released_loses_neither(store: Store) -> None:
    """The fires of AT were written ahead but never released when those of the hour after are written: AT is put
    back (its bookkeeping too), so the later time is not written ahead over it, and both fire once, in order."""
    later = AT + timedelta(hours=1)
    first = fires_ahead.prepare_fires(store, AT, [HOURLY])
    assert len(first.ids) == 1
    assert fires_ahead.prepare_fires(store, later, [HOURLY]).ids == []
    assert bookkeeping(store) == (iso(T0), iso(AT))
    assert [r["state"] for r in rows(store)] == ["CREATED"]  # T0's run; AT is no longer written ahead
    released = fires_ahead.release_due(store, first, [HOURLY], now=later + timedelta(seconds=1))
    assert [(r["scheduled_at"], r["id"] in released) for r in rows(store)] == [
        (iso(T0), False),
        (iso(AT), True),
        (iso(later), True),
    ]
    assert first.ids[0] not in released
    assert bookkeeping(store) == (iso(later), iso(later + timedelta(hours=1)))


def test_a_release_hands_on_each_transactions_fires_once_committed(store: Store, tmp_path: Path) -> None:
    """The fires of a time are released in the transactions they were written in, and each transaction's fires are
    handed on as soon as it committed: another connection sees them released while the next are still AHEAD."""
    for name in ("ns.g", "ns.h"):
        add_flow(store, name)
        add_trigger(store, name)
    fires.fire_due(store, T0)
    prepared = fires_ahead.prepare_fires(store, AT, [HOURLY], chunk=2)
    assert [len(chunk.ids) for chunk in prepared.chunks] == [2, 1]
    other = Store(tmp_path / "state.db")
    seen: list[tuple[list[str], list[str]]] = []

    def handed(ids: list[str]) -> None:
        states = {r["id"]: r["state"] for r in other.query("SELECT id, state FROM executions")}
        seen.append((ids, [states[i] for i in prepared.ids]))

    released = fires_ahead.release_due(store, prepared, [HOURLY], now=JUST_AFTER, on_fired=handed)
    assert released == prepared.ids
    assert seen == [(prepared.ids[:2], ["QUEUED", "QUEUED", "AHEAD"]), (prepared.ids[2:], ["QUEUED"] * 3)]


def test_start_returns_with_the_first_fire_time_written_ahead(tmp_path: Path) -> None:
    """A fire time within LEAD of the start is written ahead by start() itself, before it returns, so the first
    fires after a start are released like any later ones (a writer that holds the file right after start()
    returned sees them; no step of the timer could have written them since)."""
    db = Store(tmp_path / "timer.db")
    with db.atomic() as conn:
        state.upsert_source(conn, "s", "repo", "main", "", "", "c0")
    add_flow(db)
    moment = datetime.now(UTC) + timedelta(seconds=1.5)  # the trigger's next fire is 0.5-1.5 s away
    at = moment.replace(microsecond=0)
    row = state.TriggerRow("ns.f/t", "ns.f", "t", SCHEDULE, {}, f"{at.second} * * * * *", True, None, False)
    with db.atomic() as conn:
        state.upsert_trigger(conn, row, iso(datetime.now(UTC)))
    scheduler = Scheduler(db)
    scheduler.start()
    try:
        with Store(tmp_path / "timer.db").atomic() as held:
            written = held.execute("SELECT state FROM executions WHERE scheduled_at = ?", (iso(at),)).fetchall()
    finally:
        scheduler.shutdown()
    assert len(written) == 1


def test_fires_not_written_ahead_by_the_deadline_are_written_by_the_release(store: Store) -> None:
    """A write-ahead starts no transaction after its deadline (the fire time: on a busy machine it must not make
    the release late); the fires it had no time for keep their trigger's bookkeeping as it was, and the release
    writes and releases them with the others, each once, the one too late for its lateMaximumDelay skipped."""
    add_flow(store, "ns.g")
    add_trigger(store, "ns.g")
    add_flow(store, "ns.late")
    late = add_trigger(store, "ns.late", lateMaximumDelay="PT1S")
    fires.fire_due(store, T0)
    prepared = fires_ahead.prepare_fires(store, AT, [HOURLY], chunk=1, deadline=T0)  # passed: nothing written
    assert prepared.ids == [] and len(prepared.rest) == 3
    assert [r for r in store.query("SELECT id FROM executions WHERE state = 'AHEAD'")] == []
    assert bookkeeping(store) == (iso(T0), iso(AT))
    handed: list[list[str]] = []
    released = fires_ahead.release_due(store, prepared, [HOURLY], now=AT + timedelta(seconds=2), on_fired=handed.append)
    assert sorted(released) == sorted(p["id"] for p in prepared.rest if p["trigger_uid"] != late)
    assert [len(ids) for ids in handed] == [1, 1]  # one transaction each, as they were to be written
    for uid in ("ns.f/t", "ns.g/t", late):
        assert [r["scheduled_at"] for r in rows(store, uid)] == ([iso(T0)] if uid == late else [iso(T0), iso(AT)])
        assert bookkeeping(store, uid) == (iso(AT), iso(AT + timedelta(hours=1)))


def ending_paths(store: Store, path: Path) -> dict[str, str]:
    """An execution of ns.f ended each way the state package ends one: their ids by way."""
    from gitsync.state import control, lost

    def new(started: bool = False, owner: str | None = None, trigger: str | None = "ns.f/t") -> str:
        execution_id = executions.create_execution(
            store, flow_uid="ns.f", revision=1, commit="c1", inputs={}, trigger_uid=trigger, owner=owner
        )
        if started:
            executions.record_state(store, execution_id, State.RUNNING, {"started_at": T0})
        return execution_id

    ended = {"record_state": new(True), "finish_execution": new(True), "retry_execution": new(True)}
    executions.record_state(store, ended["record_state"], State.SUCCESS, {"ended_at": T0})
    executions.finish_execution(store, ended["finish_execution"], State.FAILED, "crashed")
    executions.retry_execution(store, ended["retry_execution"])
    ended["kill before start"] = new()
    control.request_kill(store, ended["kill before start"])
    ended["kill, owner gone"] = new(True, owner="gone")
    control.request_kill(store, ended["kill, owner gone"], gone={"gone"})
    ended["lost"] = new(True, owner="lost")
    lost.resolve_lost(store, None, [{"id": "lost", "kind": "cli", "host": "h", "pid": 1, "label": "x"}], T0)
    ended["abandoned"] = new(True, owner="me")
    assert lost.abandon_owned(str(path), "me", "exiting") == 1
    running = new(True)  # the flow's one slot taken
    ended["over the limit"] = new(trigger=None)
    row = executions.get_execution(store, ended["over the limit"])
    assert row is not None
    assert executions.admit(store, row, limit=1, over_limit=State.CANCELLED) == State.CANCELLED
    executions.finish_execution(store, running, State.SUCCESS)
    return ended


def test_every_way_an_execution_ends_takes_it_out_of_the_open_ones_of_its_trigger(store: Store, tmp_path: Path) -> None:
    """The overlap check reads a trigger's executions not ended (`ended_at` unset, their own index): each way an
    execution ends writes its `ended_at`, so its trigger's later fires are not queued behind it and the index
    stays the trigger's few open runs (an every-second trigger ends 86,400 a day)."""
    ended = ending_paths(store, tmp_path / "state.db")
    states = {r["id"]: r for r in store.query("SELECT id, state, ended_at FROM executions")}
    assert {way: (states[i]["state"], states[i]["ended_at"] is not None) for way, i in ended.items()} == {
        "record_state": ("SUCCESS", True),
        "finish_execution": ("FAILED", True),
        "retry_execution": ("RETRIED", True),
        "kill before start": ("KILLED", True),
        "kill, owner gone": ("KILLED", True),
        "lost": ("FAILED", True),
        "abandoned": ("KILLED", True),
        "over the limit": ("CANCELLED", True),
    }
    assert [r for r in states.values() if State(r["state"]).is_terminal != (r["ended_at"] is not None)] == []
    fired = fires.fire_due(store, AT)  # T0's fire (the fixture's) is still CREATED: this one queues behind it
    assert [r["state"] for r in rows(store) if r["id"] in fired] == ["QUEUED"]
