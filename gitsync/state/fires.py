"""Scheduled fires in SQLite: exactly once, decided by `gitsync.schedule.firing` (pure) and written here.

Exactly once: an execution of a scheduled fire is keyed by (trigger uid, scheduled time) — the table's UNIQUE
key — and is written with INSERT OR IGNORE in the same transaction that advances the trigger's bookkeeping
(`last_scheduled_at`, `next_fire`). A second fire of the same time, from a restart, a recovery racing a timer or
a retry, writes nothing. Scheduled times are stored as ISO-8601 in UTC with milliseconds, so one instant always
has one spelling.

A trigger with `conditions` or `when` has each due time judged (`gitsync.schedule.conditions`, given as `judge`):
a time they refuse is skipped (its bookkeeping advances, no execution); a time they cannot judge is recorded as a
FAILED execution whose error says why. `trigger.next` / `trigger.previous` then name accepted times.

Runs of one trigger never overlap (Kestra's Schedule semantics): when an execution of the same trigger is still
active (any of `ACTIVE_STATES`) the new one is created QUEUED; the runner starts a QUEUED execution only when no
earlier execution of its trigger is active. The fire itself is never dropped: it is recorded now and runs later.
The check reads the index of a trigger's executions not ended (`executions_trigger_open`), never its history.

Written ahead (`gitsync.state.ahead`): the timer writes the fires of a time before it, as AHEAD rows that decide
nothing until their release at the time, and releases them with the rows, parameters and inserts used here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from gitsync.schedule import firing
from gitsync.schedule.conditions import ConditionError, ScheduleConditions
from gitsync.state.database import Store, dumps, iso, loads, query_in
from gitsync.state.executions import active, delete_ahead, delete_ahead_until, new_execution_id

Group = tuple[str, bool, str]
"""(cron, withSeconds, timezone): the Schedule triggers sharing one timer, so their fire times."""

_TRIGGERS_SQL = """
    SELECT t.uid, t.flow_uid, t.type, t.spec, t.cron, t.with_seconds, t.timezone, t.disabled, t.paused,
           t.registered_at, t.last_scheduled_at, t.next_fire, f.revision, f.commit_sha, f.source,
           f.disabled AS flow_disabled
    FROM triggers t JOIN flows f ON f.uid = t.flow_uid
    WHERE t.type = '{schedule}'""".format(schedule=firing.SCHEDULE_TYPE)  # noqa: UP032 (one SQL text, two uses)

_INSERT_SQL = f"""
    INSERT OR IGNORE INTO executions (id, flow_uid, revision, commit_sha, source, state, trigger_kind, trigger_uid,
                                      scheduled_at, created_at, inputs, trigger_vars)
    SELECT :id, :flow_uid, :revision, :commit_sha, :source,
           CASE WHEN EXISTS (SELECT 1 FROM executions WHERE trigger_uid = :trigger_uid
                             AND {active()})
                THEN 'QUEUED' ELSE 'CREATED' END,
           'schedule', :trigger_uid, :scheduled_at, :created_at, :inputs, :trigger_vars"""

_INSERT_FAILED_SQL = """
    INSERT OR IGNORE INTO executions (id, flow_uid, revision, commit_sha, source, state, trigger_kind, trigger_uid,
                                      scheduled_at, created_at, ended_at, inputs, trigger_vars, error)
    VALUES (:id, :flow_uid, :revision, :commit_sha, :source, 'FAILED', 'schedule', :trigger_uid, :scheduled_at,
            :created_at, :created_at, :inputs, :trigger_vars, :error)"""


def create_scheduled_execution(
    store: Store, trigger: str | Mapping[str, Any], scheduled_at: datetime, now: datetime
) -> str | None:
    """Record the fire of `trigger` at `scheduled_at`: the new execution's id, or None when nothing was written.

    One transaction: the trigger must still exist (a retired trigger never fires once its apply committed), be
    a Schedule, active (not disabled nor paused) on an enabled flow; the execution pins the flow's active
    revision and commit; the trigger's `last_scheduled_at`/`next_fire` advance. None also when this time was
    already fired (the unique key).
    """
    uid = trigger if isinstance(trigger, str) else str(trigger["uid"])
    with store.atomic() as conn:
        row = next(iter(trigger_rows(conn, uids=[uid])), None)
        if row is None:
            return None
        spec = firing.schedule_spec(row)
        if not spec.active or spec.cron is None:
            return None
        if delete_ahead(conn, [uid]):  # it moves the bookkeeping: what was written ahead is decided again
            row = trigger_rows(conn, uids=[uid])[0]  # the bookkeeping as it was before
        execution_id = _insert(conn, row, spec, scheduled_at, now)
        anchor = max(firing.anchor_of(row), scheduled_at) if row["last_scheduled_at"] else scheduled_at
        _advance(conn, uid, anchor, spec.cron.next_fire(max(anchor, now), spec.zone))
        return execution_id


def fire_due(
    store: Store,
    now: datetime,
    *,
    group: Group | None = None,
    uids: Iterable[str] | None = None,
    recovering: bool = False,
    due_only: bool = False,
    default_timezone: str = "UTC",
    judge: ScheduleConditions | None = None,
) -> list[str]:
    """Decide and record every due fire of some Schedule triggers in ONE transaction (a group commit).

    `group` = (cron, with_seconds, timezone) selects the triggers sharing one timer; `uids` selects by uid;
    neither selects all. `recovering` applies each trigger's recoverMissedSchedules (start-up, changed triggers).
    `due_only` reads only the triggers whose bookkeeping says a time is due (`next_fire` unset or not after
    `now`): the others have nothing to decide. `judge` applies the triggers' conditions and `when` (without it
    they are not judged). Returns the ids of the executions written to run (not those recorded FAILED because a
    condition could not judge their time).

    AHEAD rows of the times it may decide (up to `now`), and every AHEAD row of the triggers named in `uids`, are
    deleted first, their bookkeeping put back: the time is decided here, from the trigger as it is now. A trigger
    whose fire of a later time is written ahead has nothing to decide before it.
    """
    uids = list(uids) if uids is not None else None
    with store.atomic() as conn:
        delete_ahead_until(conn, iso(now))
        if uids:
            delete_ahead(conn, uids)
        decisions: dict[tuple[Any, ...], tuple[firing.ScheduleSpec, firing.Decision, str | None, str | None]] = {}
        memo: dict[tuple[Any, ...], str] = {}  # trigger vars and times shared by the triggers of a batch
        inserts: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        updates: list[tuple[str | None, str | None, str]] = []
        due_by = iso(now) if due_only else None
        for row in trigger_rows(conn, group=group, uids=uids, due_by=due_by, default_timezone=default_timezone):
            anchor = firing.anchor_of(row)
            # triggers of one group share their cron and usually their anchor: decide once for all of them
            key = (row["cron"], row["with_seconds"], row["timezone"], *recovery_policy(row), is_active(row), anchor)
            decided = decisions.get(key)
            if decided is None:
                spec = firing.schedule_spec(row, default_timezone)
                decision = firing.decide(spec, anchor, now, recovering=recovering)
                last = iso(decision.anchor) if decision.anchor > anchor else None
                following = iso(decision.next_fire) if decision.next_fire else None
                decided = decisions[key] = (spec, decision, last, following)
            spec, decision, last, following = decided
            for at in decision.due:
                params = fire_params(row, spec, at, now, memo)
                if judge is not None and judge.applies(row["spec"]):
                    verdict = _judged(judge, row, spec, at, params)
                    if verdict is None:
                        continue  # its conditions refuse this time: skipped
                    if "error" in verdict:
                        failed.append(verdict)
                        continue
                    params = verdict
                inserts.append(params)
            last = last or row["last_scheduled_at"]
            if (last, following) != (row["last_scheduled_at"], row["next_fire"]):
                updates.append((last, following, row["uid"]))
        written = insert_fires(conn, inserts)
        conn.executemany(_INSERT_FAILED_SQL, failed)
        conn.executemany("UPDATE triggers SET last_scheduled_at = ?, next_fire = ? WHERE uid = ?", updates)
    return written


def _judged(
    judge: ScheduleConditions, row: Mapping[str, Any], spec: firing.ScheduleSpec, at: datetime, params: dict[str, Any]
) -> dict[str, Any] | None:
    """The fire's INSERT parameters when its conditions accept it (with `trigger.next` / `previous` moved to the
    times they accept), None when they refuse it, or the parameters of a FAILED execution saying why they could
    not judge it."""
    trigger = loads(params["trigger_vars"]) or {}
    try:
        accepted = judge.accepts(row["spec"], trigger)
    except ConditionError as exc:
        trigger_id = str(row["uid"]).rpartition("/")[2]
        error = (
            f"Schedule trigger {trigger_id!r} could not judge its fire at {trigger.get('date')}: {exc}. "
            "The flow did not run; fix the condition or the `when` of the trigger."
        )
        return {**params, "error": error}
    if not accepted:
        return None
    cron = spec.cron
    if cron is None:
        return params
    honoured = judge.honoured(
        row["spec"],
        trigger,
        lambda t: cron.next_fire(t, spec.zone),
        lambda t: firing.last_fire_at_or_before(cron, t - firing.TICK, spec.zone),
        lambda t: firing.trigger_vars(spec, t),
        at,
    )
    return {**params, "trigger_vars": dumps(honoured)}


def schedule_triggers(store: Store, default_timezone: str = "UTC") -> list[dict[str, Any]]:
    """Every Schedule trigger with its flow's revision (read-only)."""
    with store.atomic() as conn:
        return trigger_rows(conn, default_timezone=default_timezone)


def recovery_policy(row: Mapping[str, Any]) -> tuple[str, str]:
    spec = row["spec"]
    return str(spec.get("recoverMissedSchedules")), str(spec.get("lateMaximumDelay"))


def is_active(row: Mapping[str, Any]) -> bool:
    return not (row["disabled"] or row["paused"] or row["flow_disabled"])


def trigger_rows(
    conn: sqlite3.Connection,
    *,
    group: Group | None = None,
    uids: Iterable[str] | None = None,
    next_fire: str | None = None,
    due_by: str | None = None,
    default_timezone: str = "UTC",
) -> list[dict[str, Any]]:
    sql, params = _TRIGGERS_SQL, []
    if next_fire is not None:
        sql += " AND t.next_fire = ?"
        params.append(next_fire)
    if due_by is not None:
        sql += " AND (t.next_fire IS NULL OR t.next_fire <= ?)"
        params.append(due_by)
    if group is not None:
        sql += " AND t.cron = ? AND t.with_seconds = ? AND coalesce(t.timezone, ?) = ?"
        out = [dict(row) for row in conn.execute(sql, (*params, group[0], int(group[1]), default_timezone, group[2]))]
    elif uids is not None:
        out = query_in(conn, sql + " AND t.uid IN ({ids})", list(uids), params)
    else:
        out = [dict(row) for row in conn.execute(sql, params)]
    for row in out:
        row["spec"] = _spec(row["spec"])
    return out


_SPECS: dict[str, dict[str, Any]] = {}


def _spec(text: str | None) -> dict[str, Any]:
    """A trigger's spec decoded once per distinct text (a batch of 10,000 triggers shares a handful)."""
    if not text:
        return {}
    spec = _SPECS.get(text)
    if spec is None:
        if len(_SPECS) > 10_000:
            _SPECS.clear()
        spec = _SPECS[text] = loads(text) or {}
    return spec


def fire_params(
    row: Mapping[str, Any], spec: firing.ScheduleSpec, at: datetime, now: datetime, memo: dict[tuple[Any, ...], str]
) -> dict[str, Any]:
    """The INSERT parameters of one fire (times and trigger variables computed once per batch)."""
    vars_key = (row["cron"], row["with_seconds"], row["timezone"], at)
    if vars_key not in memo:
        memo[vars_key] = dumps(firing.trigger_vars(spec, at))
        memo[("iso", at)] = iso(at)
        memo[("iso", now)] = iso(now)
    inputs = row["spec"].get("inputs")
    return {
        "id": new_execution_id(),
        "flow_uid": row["flow_uid"],
        "revision": row["revision"],
        "commit_sha": row["commit_sha"],
        "source": row["source"],  # its commit status goes to the source the revision came from, like any run's
        "trigger_uid": row["uid"],
        "scheduled_at": memo[("iso", at)],
        "created_at": memo[("iso", now)],
        "inputs": dumps(inputs) if inputs else "{}",
        "trigger_vars": memo[vars_key],
    }


def insert_fires(conn: sqlite3.Connection, inserts: list[dict[str, Any]], sql: str = _INSERT_SQL) -> list[str]:
    """Insert every fire in one executemany; the ids of the rows written (a duplicate fire writes nothing)."""
    if not inserts:
        return []
    before = conn.total_changes
    conn.executemany(sql, inserts)
    if conn.total_changes - before == len(inserts):
        return [p["id"] for p in inserts]
    ids = [p["id"] for p in inserts]
    found = {row["id"] for row in query_in(conn, "SELECT id FROM executions WHERE id IN ({ids})", ids)}
    return [i for i in ids if i in found]


def _insert(
    conn: sqlite3.Connection, row: Mapping[str, Any], spec: firing.ScheduleSpec, at: datetime, now: datetime
) -> str | None:
    """One fire; its execution id, or None when that scheduled time already has one."""
    params = fire_params(row, spec, at, now, {})
    cursor = conn.execute(_INSERT_SQL, params)
    return params["id"] if cursor.rowcount == 1 else None


def _advance(conn: sqlite3.Connection, uid: str, last: datetime, following: datetime | None) -> None:
    conn.execute(
        "UPDATE triggers SET last_scheduled_at = ?, next_fire = ? WHERE uid = ?",
        (iso(last), iso(following) if following else None, uid),
    )
