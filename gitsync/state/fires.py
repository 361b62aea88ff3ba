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
The check reads the index of a trigger's active executions (`executions_trigger_active`), never its history.

Written ahead (`prepare_fires`, then `release_due`): writing 10,000 execution rows takes longer than the lag a fire
may have, so the timer writes the coming fires of a time T before T, as rows in state `AHEAD` that nothing reads
or runs, and at T releases them in one UPDATE of the execution rows alone. The trigger's bookkeeping advances with
its AHEAD row, in the transaction that writes it, and is put back whenever that row is deleted unreleased
(`gitsync.state.ahead`, the only place that deletes AHEAD rows): an AHEAD row that is never released decided
nothing. It holds the (trigger, time) key, so every other writer of that key deletes it first (`fire_due`,
`create_scheduled_execution`, and a sync's `upsert_trigger` / `delete_triggers`), and a release flips it only while
its trigger is the one it was written for: still there, active on an enabled flow, at the same flow revision and
commit, its bookkeeping advanced for T. Anything else leaves the time to `fire_due`, which deletes the row (putting
the bookkeeping back) and decides the time from the trigger as it is now (its new definition, or none). After a
crash the AHEAD rows left behind are deleted at start-up the same way, and the times they held are decided as any
missed time is (recoverMissedSchedules): no fire twice, none lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gitsync.schedule import firing
from gitsync.schedule.conditions import ConditionError, ScheduleConditions
from gitsync.state.ahead import delete_ahead, delete_ahead_rows, delete_ahead_until, delete_all_ahead
from gitsync.state.database import Store, dumps, iso, loads, query_in
from gitsync.state.executions import AHEAD, new_execution_id, sql_states
from runner.states import ACTIVE_STATES

Group = tuple[str, bool, str]
"""(cron, withSeconds, timezone): the Schedule triggers sharing one timer, so their fire times."""
PREPARE_CHUNK = 1000
"""AHEAD rows written per transaction: other writers get the store between chunks."""

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
                             AND state IN ({sql_states(ACTIVE_STATES)}))
                THEN 'QUEUED' ELSE 'CREATED' END,
           'schedule', :trigger_uid, :scheduled_at, :created_at, :inputs, :trigger_vars"""

_AHEAD_SQL = f"""
    INSERT OR IGNORE INTO executions (id, flow_uid, revision, commit_sha, source, state, trigger_kind, trigger_uid,
                                      scheduled_at, created_at, inputs, trigger_vars)
    SELECT :id, :flow_uid, :revision, :commit_sha, :source, '{AHEAD}', 'schedule', :trigger_uid, :scheduled_at,
           :created_at, :inputs, :trigger_vars
    WHERE EXISTS (SELECT 1 FROM triggers t WHERE t.uid = :trigger_uid AND t.next_fire = :scheduled_at)"""
"""Write a fire ahead while its time is still the trigger's next to decide. (No advance is pending then: the fires
written ahead of earlier times were put back first, and one of this time has advanced `next_fire` past it.)"""
_ADVANCE_SQL = """
    UPDATE triggers SET ahead_at = next_fire, ahead_last = last_scheduled_at, last_scheduled_at = :scheduled_at,
                        next_fire = :following
    WHERE uid = :trigger_uid AND next_fire = :scheduled_at"""
"""The bookkeeping of a fire written ahead (in its transaction), with what puts it back (`gitsync.state.ahead`)."""

_RELEASE_SQL = f"""
    UPDATE executions SET created_at = :created_at,
        state = CASE WHEN EXISTS (SELECT 1 FROM executions a WHERE a.trigger_uid = executions.trigger_uid
                                  AND a.state IN ({sql_states(ACTIVE_STATES)}))
                THEN 'QUEUED' ELSE 'CREATED' END
    WHERE state = '{AHEAD}' AND scheduled_at = :at"""
"""Release the AHEAD rows of a time while no trigger and no flow changed since they were written."""
_RELEASE_CHECKED_SQL = (
    _RELEASE_SQL
    + f"""
      AND EXISTS (SELECT 1 FROM triggers t JOIN flows f ON f.uid = t.flow_uid
                  WHERE t.uid = executions.trigger_uid AND t.type = '{firing.SCHEDULE_TYPE}' AND t.ahead_at = :at
                    AND t.disabled = 0 AND t.paused = 0 AND f.disabled = 0
                    AND f.revision = executions.revision AND f.commit_sha = executions.commit_sha
                    AND f.source IS executions.source)"""
)
"""Release those whose trigger is still the one they were written for (something changed since)."""

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
        row = next(iter(_trigger_rows(conn, uids=[uid])), None)
        if row is None:
            return None
        spec = firing.schedule_spec(row)
        if not spec.active or spec.cron is None:
            return None
        if delete_ahead(conn, [uid]):  # it moves the bookkeeping: what was written ahead is decided again
            row = _trigger_rows(conn, uids=[uid])[0]  # the bookkeeping as it was before
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
        for row in _trigger_rows(conn, group=group, uids=uids, due_by=due_by, default_timezone=default_timezone):
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
            for at in decision.due:
                params = _params(row, spec, at, now, memo)
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
        written = _insert_all(conn, inserts)
        conn.executemany(_INSERT_FAILED_SQL, failed)
        conn.executemany("UPDATE triggers SET last_scheduled_at = ?, next_fire = ? WHERE uid = ?", updates)
    return written


@dataclass
class Prepared:
    """The fires of one time written ahead (`prepare_fires`), as its release needs them."""

    at: datetime
    generation: int = -1
    """The schedule generation (bumped by any change of a trigger or a flow) when the triggers were read."""
    ids: list[str] = field(default_factory=list)
    """The AHEAD rows written (their triggers' bookkeeping advanced with them)."""
    late: dict[str, float] = field(default_factory=dict)
    """AHEAD row id -> its trigger's lateMaximumDelay in seconds (triggers that have one): a release later than
    that leaves the time to `fire_due`, which skips it as late."""
    released: bool = False
    """Set by its release: a second release of the same preparation flips nothing."""


def prepare_fires(
    store: Store,
    at: datetime,
    groups: Sequence[Group],
    *,
    default_timezone: str = "UTC",
    judge: ScheduleConditions | None = None,
    chunk: int = PREPARE_CHUNK,
) -> Prepared:
    """Write ahead the fires at `at` of the triggers of `groups` for which `at` is exactly the next time to decide,
    as AHEAD rows, `chunk` per transaction, each with its trigger's bookkeeping advanced past `at` (put back if the
    row is deleted unreleased, `gitsync.state.ahead`). Nothing is decided until the release.

    Left to `fire_due` at `at`: inactive triggers, triggers whose conditions or `when` must be judged (their
    verdict belongs to the time of the fire), and any trigger with an earlier time still undecided.
    """
    at_iso = iso(at)
    prepared = Prepared(at)
    inserts: list[dict[str, Any]] = []
    memo: dict[tuple[Any, ...], str] = {}
    specs: dict[tuple[Any, ...], tuple[firing.ScheduleSpec, bool, str | None]] = {}
    with store.atomic() as conn:
        # fires of earlier times still written ahead were not released: put back, those times are decided by fire_due
        delete_ahead_until(conn, iso(at), before=True)
        prepared.generation = _generation(conn)
        rows = [
            row
            for group in groups
            for row in _trigger_rows(conn, group=group, next_fire=at_iso, default_timezone=default_timezone)
        ]
    for row in rows:
        if not _active(row) or (judge is not None and judge.applies(row["spec"])):
            continue
        anchor = row["last_scheduled_at"] or row["registered_at"]
        key = (row["cron"], row["with_seconds"], row["timezone"], *_policy(row), anchor)
        known = specs.get(key)
        if known is None:
            spec = firing.schedule_spec(row, default_timezone)
            cron = spec.cron
            exact = cron is not None and cron.next_fire(firing.parse_time(anchor), spec.zone) == at
            after = cron.next_fire(at, spec.zone) if cron is not None and exact else None
            known = specs[key] = (spec, exact, iso(after) if after else None)
        spec, exact, following = known
        if not exact:
            continue  # `at` is not the next time after its anchor: an earlier time is undecided
        params = _params(row, spec, at, at, memo)  # created_at: a placeholder until the release writes its own
        params["following"] = following
        inserts.append(params)
        if spec.late_maximum_delay is not None:
            prepared.late[params["id"]] = spec.late_maximum_delay.total_seconds()
    for start in range(0, len(inserts), chunk):
        batch = inserts[start : start + chunk]
        with store.atomic(checkpoint=start == 0) as conn:  # one checkpoint per time written ahead
            written = _insert_all(conn, batch, _AHEAD_SQL)
            if len(written) < len(batch):
                kept = set(written)
                batch = [params for params in batch if params["id"] in kept]
            conn.executemany(_ADVANCE_SQL, batch)
            prepared.ids += written
    return prepared


def release_due(
    store: Store,
    prepared: Prepared | None,
    groups: Iterable[Group],
    *,
    now: datetime | None = None,
    default_timezone: str = "UTC",
    judge: ScheduleConditions | None = None,
) -> list[str]:
    """Fire every due trigger of `groups` in ONE transaction: the AHEAD rows of `prepared` whose trigger is still
    the one they were written for become CREATED (QUEUED behind an active run of the same trigger) with this
    moment as `created_at` (their bookkeeping was advanced with them); then `fire_due` decides what is left due (the
    triggers not written ahead, the AHEAD rows refused, earlier missed times). `now` (default: the clock, read once the
    store is held) is the moment of the fires. The ids of the executions written to run. Its commit leaves the
    WAL's checkpoint to the next write (`atomic(checkpoint=False)`).
    """
    with store.atomic(checkpoint=False) as conn:
        moment = now or datetime.now(UTC)
        released = _release(conn, prepared, moment) if prepared and prepared.ids else []
        for group in groups:
            tz = default_timezone
            released += fire_due(store, moment, group=group, due_only=True, default_timezone=tz, judge=judge)
    return released


def discard_ahead(store: Store, uids: Sequence[str] | None = None) -> int:
    """Delete the AHEAD rows (of the triggers `uids`, or all), their bookkeeping put back: the number deleted. They
    decided nothing."""
    with store.atomic() as conn:
        if uids is None:
            return delete_all_ahead(conn)
        return delete_ahead(conn, uids)


def _release(conn: sqlite3.Connection, prepared: Prepared, moment: datetime) -> list[str]:
    if moment < prepared.at or prepared.released:
        return []  # never before its time, never twice
    lateness = (moment - prepared.at).total_seconds()
    late = {execution_id for execution_id, bound in prepared.late.items() if bound < lateness}
    if late:  # fire_due skips their time as late
        delete_ahead_rows(conn, sorted(late))
    at_iso = iso(prepared.at)
    sql = _RELEASE_SQL if _generation(conn) == prepared.generation else _RELEASE_CHECKED_SQL
    flipped = conn.execute(sql, {"at": at_iso, "created_at": iso(moment)}).rowcount
    prepared.released = True  # (a rollback leaves nothing flipped: the AHEAD rows are decided by fire_due)
    ids = [execution_id for execution_id in prepared.ids if execution_id not in late] if late else prepared.ids
    if flipped == len(ids):  # the AHEAD rows at this time are this preparation's: all of them were flipped
        return ids
    # some were refused or deleted by a sync meanwhile; a row with one of these ids that is no longer AHEAD was
    # flipped just now (the ids were only ever written as AHEAD, by this preparation)
    found = query_in(conn, f"SELECT id FROM executions WHERE state != '{AHEAD}' AND id IN ({{ids}})", ids)
    kept = {row["id"] for row in found}
    return [execution_id for execution_id in ids if execution_id in kept]


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT n FROM schedule_generation").fetchone()
    return int(row[0]) if row else -1


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
        return _trigger_rows(conn, default_timezone=default_timezone)


def _policy(row: Mapping[str, Any]) -> tuple[str, str]:
    spec = row["spec"]
    return str(spec.get("recoverMissedSchedules")), str(spec.get("lateMaximumDelay"))


def _active(row: Mapping[str, Any]) -> bool:
    return not (row["disabled"] or row["paused"] or row["flow_disabled"])


def _trigger_rows(
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
        "source": row["source"],  # its commit status goes to the source the revision came from, like any run's
        "trigger_uid": row["uid"],
        "scheduled_at": memo[("iso", at)],
        "created_at": memo[("iso", now)],
        "inputs": dumps(inputs) if inputs else "{}",
        "trigger_vars": memo[vars_key],
    }


def _insert_all(conn: sqlite3.Connection, inserts: list[dict[str, Any]], sql: str = _INSERT_SQL) -> list[str]:
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
    params = _params(row, spec, at, now, {})
    cursor = conn.execute(_INSERT_SQL, params)
    return params["id"] if cursor.rowcount == 1 else None


def _advance(conn: sqlite3.Connection, uid: str, last: datetime, following: datetime | None) -> None:
    conn.execute(
        "UPDATE triggers SET last_scheduled_at = ?, next_fire = ? WHERE uid = ?",
        (iso(last), iso(following) if following else None, uid),
    )
