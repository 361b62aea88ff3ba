"""Fires written ahead of their time: the timer writes the fires of a time T before T, as execution rows in state
`AHEAD` that nothing reads or runs (`prepare_fires`), and releases them at T (`release_due`).

Writing 10,000 execution rows takes longer than the lag a fire may have; releasing them is one UPDATE of the rows
alone, in the chunks they were written in (one transaction each, each handed on once committed, so the first fires
are seen before the last are released). The trigger's bookkeeping (`last_scheduled_at`, `next_fire`) advances with
its AHEAD row, in the transaction that writes it, keeping what it replaced (`ahead_at`, `ahead_last`), and is put
back whenever that row is deleted unreleased (`gitsync.state.executions.delete_ahead` and its siblings, the only
code that deletes AHEAD rows): an AHEAD row that is never released decided nothing.

An AHEAD row holds the (trigger, time) key, so every other writer of that key deletes it first (`fires.fire_due`,
`fires.create_scheduled_execution`, and a sync's `upsert_trigger` / `delete_triggers`), and a release flips it only
while its trigger is the one it was written for: still there, active on an enabled flow, at the same flow revision
and commit, its bookkeeping advanced for T. Anything else leaves the time to `fire_due`, which deletes the row
(putting the bookkeeping back) and decides the time from the trigger as it is now (its new definition, or none).
After a crash the AHEAD rows left behind are deleted at start-up the same way, and the times they held are decided
as any missed time is (recoverMissedSchedules): no fire twice, none lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gitsync.schedule import firing
from gitsync.schedule.conditions import ScheduleConditions
from gitsync.state import fires
from gitsync.state.database import Store, iso, query_in
from gitsync.state.executions import (
    AHEAD,
    active,
    delete_ahead,
    delete_ahead_rows,
    delete_ahead_until,
    delete_all_ahead,
)
from gitsync.state.fires import Group

PREPARE_CHUNK = 1000
"""AHEAD rows written per transaction (and released per transaction): other writers get the store between them."""

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
"""The bookkeeping of a fire written ahead (in its transaction), with what puts it back."""

_RELEASE_SQL = f"""
    UPDATE executions SET created_at = :created_at,
        state = CASE WHEN EXISTS (SELECT 1 FROM executions a WHERE a.trigger_uid = executions.trigger_uid
                                  AND {active("a")})
                THEN 'QUEUED' ELSE 'CREATED' END
    WHERE rowid > :after AND rowid <= :last AND +state = '{AHEAD}' AND scheduled_at = :at"""
"""Release the AHEAD rows of a time written in one transaction (their rowids), while no trigger and no flow changed
since they were written."""
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


@dataclass(frozen=True)
class Chunk:
    """The AHEAD rows written by one transaction: their rowids are in (after, last]."""

    after: int
    last: int
    ids: list[str]


@dataclass
class Prepared:
    """The fires of one time written ahead (`prepare_fires`), as its release needs them."""

    at: datetime
    generation: int = -1
    """The schedule generation (bumped by any change of a trigger or a flow) when the triggers were read."""
    ids: list[str] = field(default_factory=list)
    """The AHEAD rows written (their triggers' bookkeeping advanced with them)."""
    chunks: list[Chunk] = field(default_factory=list)
    """The rows of each transaction that wrote them, released in the same chunks."""
    rest: list[dict[str, Any]] = field(default_factory=list)
    """The fires left to write when the deadline came (their triggers untouched): the release writes them."""
    per_transaction: int = PREPARE_CHUNK
    """Rows written (and released) per transaction."""
    late: dict[str, float] = field(default_factory=dict)
    """Fire id -> its trigger's lateMaximumDelay in seconds (triggers that have one): a release later than that
    leaves the time to `fire_due`, which skips it as late."""
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
    deadline: datetime | None = None,
) -> Prepared:
    """Write ahead the fires at `at` of the triggers of `groups` for which `at` is exactly the next time to decide,
    as AHEAD rows, `chunk` per transaction, each with its trigger's bookkeeping advanced past `at` (put back if the
    row is deleted unreleased). Nothing is decided until the release. No transaction starts after `deadline`: the
    fires not written by then are the release's to write (`rest`), so a slow write never makes the release late.

    Left to `fire_due` at `at`: inactive triggers, triggers whose conditions or `when` must be judged (their
    verdict belongs to the time of the fire), and any trigger with an earlier time still undecided.
    """
    at_iso = iso(at)
    prepared = Prepared(at, per_transaction=chunk)
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
            for row in fires.trigger_rows(conn, group=group, next_fire=at_iso, default_timezone=default_timezone)
        ]
    for row in rows:
        if not fires.is_active(row) or (judge is not None and judge.applies(row["spec"])):
            continue
        anchor = row["last_scheduled_at"] or row["registered_at"]
        key = (row["cron"], row["with_seconds"], row["timezone"], *fires.recovery_policy(row), anchor)
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
        params = fires.fire_params(row, spec, at, at, memo)  # created_at: a placeholder until the release
        params["following"] = following
        inserts.append(params)
        if spec.late_maximum_delay is not None:
            prepared.late[params["id"]] = spec.late_maximum_delay.total_seconds()
    for start in range(0, len(inserts), chunk):
        if deadline is not None and datetime.now(UTC) >= deadline:
            prepared.rest = inserts[start:]
            break
        with store.atomic(checkpoint=start == 0) as conn:  # one checkpoint per time written ahead
            written = _write(conn, inserts[start : start + chunk])
        if written is not None:
            prepared.ids += written.ids
            prepared.chunks.append(written)
    return prepared


def _write(conn: sqlite3.Connection, batch: list[dict[str, Any]]) -> Chunk | None:
    """Write these fires ahead, with their bookkeeping: the chunk written (None: none was)."""
    rowid = _last_rowid(conn)
    written = fires.insert_fires(conn, batch, _AHEAD_SQL)
    if len(written) < len(batch):
        kept = set(written)
        batch = [params for params in batch if params["id"] in kept]
    conn.executemany(_ADVANCE_SQL, batch)
    return Chunk(rowid, _last_rowid(conn), written) if written else None


def release_due(
    store: Store,
    prepared: Prepared | None,
    groups: Iterable[Group],
    *,
    now: datetime | None = None,
    default_timezone: str = "UTC",
    judge: ScheduleConditions | None = None,
    on_fired: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Fire every due trigger of `groups`: the AHEAD rows of `prepared` whose trigger is still the one they were
    written for become CREATED (QUEUED behind an active run of the same trigger), in the chunks they were written in,
    one transaction each, with its moment as `created_at` (their bookkeeping was advanced with them), and its fires
    left to write (`rest`) are written and released the same way; then, in one more, `fire_due` decides what is
    left due (the triggers not written ahead, the AHEAD rows refused, earlier missed
    times). `now` (default: the clock, read once the store is held) is the moment of the fires. `on_fired` is given
    the ids of each transaction's fires once it committed (the first are seen before the last are released); the
    ids of all of them are returned. The commits leave the WAL's checkpoint to the next write.
    """
    released: list[str] = []

    def fired(ids: list[str]) -> None:
        released.extend(ids)
        if on_fired is not None and ids:
            on_fired(ids)

    if prepared is not None and not prepared.released:
        late: set[str] | None = None  # set by the first transaction
        size = prepared.per_transaction
        rest = [prepared.rest[start : start + size] for start in range(0, len(prepared.rest), size)]
        parts: list[Chunk | list[dict[str, Any]]] = [*prepared.chunks, *rest]
        for part in parts:
            with store.atomic(checkpoint=False) as conn:
                moment = now or datetime.now(UTC)
                if late is None:
                    if moment < prepared.at:
                        break  # never before its time
                    prepared.released = True  # never twice (what a rollback leaves AHEAD is decided by fire_due)
                    late = _late(conn, prepared, moment)
                chunk = part if isinstance(part, Chunk) else _write(conn, [p for p in part if p["id"] not in late])
                ids = _release(conn, prepared, chunk, late, moment) if chunk is not None else []
            fired(ids)
    with store.atomic(checkpoint=False) as conn:
        moment = now or datetime.now(UTC)
        for group in groups:
            tz = default_timezone
            fired(fires.fire_due(store, moment, group=group, due_only=True, default_timezone=tz, judge=judge))
    return released


def discard_ahead(store: Store, uids: Sequence[str] | None = None) -> int:
    """Delete the AHEAD rows (of the triggers `uids`, or all), their bookkeeping put back: the number deleted. They
    decided nothing."""
    with store.atomic() as conn:
        if uids is None:
            return delete_all_ahead(conn)
        return delete_ahead(conn, uids)


def _late(conn: sqlite3.Connection, prepared: Prepared, moment: datetime) -> set[str]:
    """Delete the AHEAD rows released later than their trigger's lateMaximumDelay (fire_due skips their time)."""
    lateness = (moment - prepared.at).total_seconds()
    late = {execution_id for execution_id, bound in prepared.late.items() if bound < lateness}
    if late:
        delete_ahead_rows(conn, sorted(late))
    return late


def _release(conn: sqlite3.Connection, prepared: Prepared, chunk: Chunk, late: set[str], moment: datetime) -> list[str]:
    """Release one chunk: the ids flipped. Each row's trigger is read only when a trigger or a flow changed since
    the chunk was written (the schedule generation moved)."""
    sql = _RELEASE_SQL if _generation(conn) == prepared.generation else _RELEASE_CHECKED_SQL
    values = {"at": iso(prepared.at), "created_at": iso(moment), "after": chunk.after, "last": chunk.last}
    flipped = conn.execute(sql, values).rowcount
    ids = [execution_id for execution_id in chunk.ids if execution_id not in late] if late else chunk.ids
    if flipped == len(ids):  # the AHEAD rows of the chunk at this time are its own: all of them were flipped
        return ids
    # some were refused or deleted by a sync meanwhile; a row with one of these ids that is no longer AHEAD was
    # flipped just now (the ids were only ever written as AHEAD, by this preparation)
    found = query_in(conn, f"SELECT id FROM executions WHERE state != '{AHEAD}' AND id IN ({{ids}})", ids)
    kept = {row["id"] for row in found}
    return [execution_id for execution_id in ids if execution_id in kept]


def _last_rowid(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(rowid) FROM executions").fetchone()
    return int(row[0] or 0)


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT n FROM schedule_generation").fetchone()
    return int(row[0]) if row else -1
