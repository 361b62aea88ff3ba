"""Execution rows in SQLite: scheduled fires (exactly once), listing, and resolving what a crash interrupted.

Exactly once: an execution of a scheduled fire is keyed by (trigger uid, scheduled time) — the table's UNIQUE
key — and is written with INSERT OR IGNORE in the same transaction that advances the trigger's bookkeeping
(`last_scheduled_at`, `next_fire`). A second fire of the same time, from a restart, a recovery racing a timer or
a retry, writes nothing. Scheduled times are stored as ISO-8601 in UTC with milliseconds, so one instant always
has one spelling.

Runs of one trigger never overlap (Kestra's Schedule semantics): when an execution of the same trigger is still
active (CREATED, QUEUED, RUNNING, PAUSED, RESTARTED, KILLING, RETRYING) the new one is created QUEUED; the runner
starts a QUEUED execution only when no earlier execution of its trigger is active. The fire itself is never
dropped: it is recorded now and runs later.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from gitsync.schedule import firing
from gitsync.state.applied import enqueue_status
from gitsync.state.database import Store, dumps, iso, loads

ACTIVE_STATES = ("CREATED", "QUEUED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "RETRYING")
INTERRUPTED_STATES = ("RUNNING", "KILLING", "PAUSED")  # no thread of a dead process can carry them on
WORKER_LOST = "worker lost: gitsync stopped while the execution was running"


_TRIGGERS_SQL = """
    SELECT t.uid, t.flow_uid, t.type, t.spec, t.cron, t.with_seconds, t.timezone, t.disabled, t.paused,
           t.registered_at, t.last_scheduled_at, t.next_fire, f.revision, f.commit_sha, f.source,
           f.disabled AS flow_disabled
    FROM triggers t JOIN flows f ON f.uid = t.flow_uid
    WHERE t.type = '{schedule}'""".format(schedule=firing.SCHEDULE_TYPE)  # noqa: UP032 (a one-line edit here)

_INSERT_SQL = f"""
    INSERT OR IGNORE INTO executions (id, flow_uid, revision, commit_sha, state, trigger_uid, scheduled_at,
                                      created_at, inputs, trigger_vars)
    SELECT :id, :flow_uid, :revision, :commit_sha,
           CASE WHEN EXISTS (SELECT 1 FROM executions WHERE trigger_uid = :trigger_uid
                             AND state IN ({",".join(f"'{s}'" for s in ACTIVE_STATES)}))
                THEN 'QUEUED' ELSE 'CREATED' END,
           :trigger_uid, :scheduled_at, :created_at, :inputs, :trigger_vars"""

_sequence = itertools.count()


def new_execution_id() -> str:
    """Sortable by creation time (milliseconds, then a per-process counter), unique across processes."""
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{next(_sequence) % 0x1000000:06x}{os.urandom(5).hex()}"


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
        row = next(iter(_trigger_rows(conn, uids=[uid])), None)
        if row is None:
            return None
        spec = firing.schedule_spec(row)
        if not spec.active or spec.cron is None:
            return None
        execution_id = _insert(conn, row, spec, scheduled_at, now)
        anchor = max(firing.anchor_of(row), scheduled_at) if row["last_scheduled_at"] else scheduled_at
        _advance(conn, uid, anchor, spec.cron.next_fire(max(anchor, now), spec.zone))
        return execution_id


def fire_due(
    store: Store,
    now: datetime,
    *,
    group: tuple[str, bool, str] | None = None,
    uids: Iterable[str] | None = None,
    recovering: bool = False,
    default_timezone: str = "UTC",
) -> list[str]:
    """Decide and record every due fire of some Schedule triggers in ONE transaction (a group commit).

    `group` = (cron, with_seconds, timezone) selects the triggers sharing one timer; `uids` selects by uid;
    neither selects all. `recovering` applies each trigger's recoverMissedSchedules (start-up, changed triggers).
    Returns the ids of the executions written.
    """
    with store.atomic() as conn:
        decisions: dict[tuple[Any, ...], tuple[firing.ScheduleSpec, firing.Decision, str | None, str | None]] = {}
        memo: dict[tuple[Any, ...], str] = {}  # trigger vars and times shared by the triggers of a batch
        inserts: list[dict[str, Any]] = []
        updates: list[tuple[str | None, str | None, str]] = []
        for row in _trigger_rows(conn, group=group, uids=uids, default_timezone=default_timezone):
            anchor = firing.anchor_of(row)
            # triggers of one group share their cron and usually their anchor: decide once for all of them
            key = (row["cron"], row["with_seconds"], row["timezone"], *_policy(row), _active(row), anchor)
            decided = decisions.get(key)
            if decided is None:
                spec = firing.schedule_spec(row, default_timezone)
                decision = firing.decide(spec, anchor, now, recovering=recovering)
                last = iso(decision.anchor) if decision.anchor > anchor else None
                following = iso(decision.next_fire) if decision.next_fire else None
                decided = decisions[key] = (spec, decision, last, following)
            spec, decision, last, following = decided
            inserts += (_params(row, spec, at, now, memo) for at in decision.due)
            last = last or row["last_scheduled_at"]
            if (last, following) != (row["last_scheduled_at"], row["next_fire"]):
                updates.append((last, following, row["uid"]))
        written = _insert_all(conn, inserts)
        conn.executemany("UPDATE triggers SET last_scheduled_at = ?, next_fire = ? WHERE uid = ?", updates)
    return written


def schedule_triggers(store: Store, default_timezone: str = "UTC") -> list[dict[str, Any]]:
    """Every Schedule trigger with its flow's revision (read-only)."""
    with store.atomic() as conn:
        return _trigger_rows(conn, default_timezone=default_timezone)


def _policy(row: Mapping[str, Any]) -> tuple[str, str]:
    spec = row["spec"]
    return str(spec.get("recoverMissedSchedules")), str(spec.get("lateMaximumDelay"))


def _active(row: Mapping[str, Any]) -> bool:
    return not (row["disabled"] or row["paused"] or row["flow_disabled"])


def _trigger_rows(
    conn: sqlite3.Connection,
    *,
    group: tuple[str, bool, str] | None = None,
    uids: Iterable[str] | None = None,
    default_timezone: str = "UTC",
) -> list[dict[str, Any]]:
    if group is not None:
        sql = _TRIGGERS_SQL + " AND t.cron = ? AND t.with_seconds = ? AND coalesce(t.timezone, ?) = ?"
        rows = conn.execute(sql, (group[0], int(group[1]), default_timezone, group[2])).fetchall()
    elif uids is not None:
        wanted = list(uids)
        rows = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            sql = _TRIGGERS_SQL + f" AND t.uid IN ({','.join('?' * len(chunk))})"
            rows += conn.execute(sql, chunk).fetchall()
    else:
        rows = conn.execute(_TRIGGERS_SQL).fetchall()
    out = [dict(row) for row in rows]
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


def _params(
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
        "trigger_uid": row["uid"],
        "scheduled_at": memo[("iso", at)],
        "created_at": memo[("iso", now)],
        "inputs": dumps(inputs) if inputs else "{}",
        "trigger_vars": memo[vars_key],
    }


def _insert_all(conn: sqlite3.Connection, inserts: list[dict[str, Any]]) -> list[str]:
    """Insert every fire in one executemany; the ids of the rows written (a duplicate fire writes nothing)."""
    if not inserts:
        return []
    before = conn.total_changes
    conn.executemany(_INSERT_SQL, inserts)
    if conn.total_changes - before == len(inserts):
        return [p["id"] for p in inserts]
    ids = [p["id"] for p in inserts]
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = f"SELECT id FROM executions WHERE id IN ({','.join('?' * len(chunk))})"
        found |= {r[0] for r in conn.execute(sql, chunk)}
    return [i for i in ids if i in found]


def _insert(
    conn: sqlite3.Connection, row: Mapping[str, Any], spec: firing.ScheduleSpec, at: datetime, now: datetime
) -> str | None:
    """One fire; its execution id, or None when that scheduled time already has one."""
    params = _params(row, spec, at, now, {})
    cursor = conn.execute(_INSERT_SQL, params)
    return params["id"] if cursor.rowcount == 1 else None


def _advance(conn: sqlite3.Connection, uid: str, last: datetime, following: datetime | None) -> None:
    conn.execute(
        "UPDATE triggers SET last_scheduled_at = ?, next_fire = ? WHERE uid = ?",
        (iso(last), iso(following) if following else None, uid),
    )


def list_executions(
    store: Store, *, flow: str | None = None, state: str | None = None, trigger: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The `gitsync executions` JSON objects, newest first (read-only)."""
    where, params = [], []
    for column, value in (("flow_uid", flow), ("state", state), ("trigger_uid", trigger)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = """SELECT id, flow_uid AS flow, revision, commit_sha AS "commit", state, trigger_uid AS "trigger",
                    scheduled_at, created_at, started_at, ended_at, inputs, outputs, trigger_vars, error
             FROM executions"""
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    rows = store.query(sql, (*params, limit))
    for row in rows:
        for key in ("inputs", "outputs", "trigger_vars"):
            row[key] = loads(row[key]) or {}
        row["task_runs"] = task_runs(store, row["id"])
    return rows


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


def resolve_interrupted(store: Store, reason: str, now: datetime) -> list[str]:
    """Executions left RUNNING/KILLING by a crash become FAILED with `reason` (and a failure status in the
    outbox, same transaction). CREATED/QUEUED ones stay: they have not started and will be started later."""
    marks = ",".join("?" * len(INTERRUPTED_STATES))
    with store.atomic() as conn:
        rows = conn.execute(
            f"""SELECT e.id, e.flow_uid, e.commit_sha, coalesce(e.source, f.source) AS source FROM executions e
                LEFT JOIN flows f ON f.uid = e.flow_uid WHERE e.state IN ({marks}) ORDER BY e.id""",
            INTERRUPTED_STATES,
        ).fetchall()
        for row in rows:
            conn.execute(
                "UPDATE executions SET state = 'FAILED', ended_at = ?, error = ? WHERE id = ?",
                (iso(now), reason, row["id"]),
            )
            conn.execute(  # the task runs it was in the middle of: failed with the same reason, never left RUNNING
                """UPDATE task_runs SET state = 'FAILED', ended_at = ?, error = ?
                   WHERE execution_id = ? AND state IN ('CREATED', 'RUNNING', 'KILLING', 'PAUSED', 'RETRYING')""",
                (iso(now), reason, row["id"]),
            )
            if row["source"] and row["commit_sha"]:  # the execution's own context, so its pending status is closed
                context = f"gitsync/{row['flow_uid']}"
                enqueue_status(conn, row["source"], row["commit_sha"], context, "failure", reason, None)
    return [row["id"] for row in rows]
