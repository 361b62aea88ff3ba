"""Execution rows in SQLite: creating and admitting them, their state changes and listing (kill and resume requests
are in `gitsync.state.control`, what a gone owner left is resolved in `gitsync.state.lost`, scheduled fires are in
`gitsync.state.fires` and `gitsync.state.ahead`, task runs and logs in `gitsync.state.task_runs`).

Each function is one unit of work in one `atomic()` transaction; an execution's state change writes the commit
status it means (the outbox row) in that same transaction.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from gitsync.state import task_runs as task_run_rows
from gitsync.state.database import Store, dumps, iso, loads, now_iso, query_in
from gitsync.state.outbox import enqueue_status
from runner.states import ACTIVE_STATES, State

INTERRUPTED_STATES: tuple[State, ...] = (State.RUNNING, State.KILLING, State.PAUSED)
"""States no thread of a dead process can carry on."""
SLOT_STATES: tuple[State, ...] = (State.RUNNING, State.PAUSED)
"""States of the executions that count against their flow's concurrency limit."""
NOT_STARTED_STATES: tuple[State, ...] = (State.CREATED, State.QUEUED)
"""States a kill cancels outright: no task has run."""
WORKER_LOST = "worker lost: gitsync stopped while the execution was running"

TriggerKind = Literal["manual", "api", "webhook", "schedule", "flow", "subflow", "retry", "replay", "poll"]
"""How an execution was started (`trigger_kind`): `gitsync run`, the API's run route, a Webhook trigger, a Schedule
fire, a Flow trigger, a Subflow task, a flow-level retry (CREATE_NEW_EXECUTION), a replay of an ended execution from
one of its task runs (`gitsync replay`, the API's replay route; `replay_of` names it). NULL on rows written before it
was recorded where the row did not show it."""


AHEAD = "AHEAD"
"""The `state` of a scheduled fire written ahead of its time (`gitsync.state.ahead.prepare_fires`): not an
execution yet. No read here lists or finds it and nothing runs it; its release makes it CREATED (or QUEUED) with the
release's `created_at`, or it is deleted by one of the functions below, which first put back the bookkeeping its
trigger advanced with it (`ahead_at`, `ahead_last`: `gitsync.state.ahead`)."""


def pending(alias: str) -> str:
    """SQL: the trigger row `alias` has its bookkeeping advanced for a fire that is still AHEAD (not released)."""
    return f"""({alias}.ahead_at IS NOT NULL AND EXISTS (SELECT 1 FROM executions e WHERE e.trigger_uid = {alias}.uid
                AND e.scheduled_at = {alias}.ahead_at AND e.state = '{AHEAD}'))"""


_UNDO = f"""UPDATE triggers SET last_scheduled_at = ahead_last, next_fire = ahead_at, ahead_at = NULL, ahead_last = NULL
    WHERE {{which}} AND {pending("triggers")}"""
"""Put back the bookkeeping of the triggers selected by `which` whose advance is pending."""


def delete_ahead(conn: sqlite3.Connection, trigger_uids: Iterable[str]) -> int:
    """Delete the AHEAD rows of these triggers (their bookkeeping put back first); the number deleted. Each trigger
    costs one range of the (trigger, time) key after its last decided time: never a walk over its history."""
    if conn.execute(f"SELECT 1 FROM executions WHERE state = '{AHEAD}' LIMIT 1").fetchone() is None:
        return 0  # none anywhere (a start-up, most syncs): 10,000 triggers cost nothing
    uids = [(uid,) for uid in trigger_uids]
    conn.executemany(_UNDO.format(which="uid = ?1"), uids)
    before = conn.total_changes
    conn.executemany(
        f"""DELETE FROM executions WHERE +state = '{AHEAD}' AND trigger_uid = ?1
            AND scheduled_at > coalesce((SELECT last_scheduled_at FROM triggers WHERE uid = ?1), '')""",
        uids,
    )
    return conn.total_changes - before


def delete_ahead_until(conn: sqlite3.Connection, moment: str, *, before: bool = False) -> int:
    """Delete the AHEAD rows of times up to `moment` (ISO; `before`: earlier times only), their bookkeeping put back
    first; the number deleted."""
    up_to = "<" if before else "<="
    which = f"""uid IN (SELECT trigger_uid FROM executions WHERE state = '{AHEAD}' AND scheduled_at {up_to} :m)
                AND ahead_at {up_to} :m"""
    conn.execute(_UNDO.format(which=which), {"m": moment})
    sql = f"DELETE FROM executions WHERE state = '{AHEAD}' AND scheduled_at {up_to} ?"
    return conn.execute(sql, (moment,)).rowcount


def delete_ahead_rows(conn: sqlite3.Connection, execution_ids: Sequence[str]) -> int:
    """Delete these AHEAD rows, their bookkeeping put back first; the number deleted."""
    ids = [(execution_id,) for execution_id in execution_ids]
    which = f"""uid = (SELECT trigger_uid FROM executions WHERE id = ?1 AND state = '{AHEAD}')
                AND ahead_at = (SELECT scheduled_at FROM executions WHERE id = ?1)"""
    conn.executemany(_UNDO.format(which=which), ids)
    before = conn.total_changes
    conn.executemany(f"DELETE FROM executions WHERE id = ?1 AND state = '{AHEAD}'", ids)
    return conn.total_changes - before


def delete_all_ahead(conn: sqlite3.Connection) -> int:
    """Delete every AHEAD row, every pending bookkeeping put back first; the number deleted."""
    conn.execute(_UNDO.format(which="ahead_at IS NOT NULL"))
    return conn.execute(f"DELETE FROM executions WHERE state = '{AHEAD}'").rowcount


def active(alias: str = "") -> str:
    """SQL: the execution (`alias`) is active, read through the index of a trigger's executions not ended
    (`executions_trigger_open`, with `trigger_uid = ?`): every way an execution ends writes its `ended_at`."""
    column = f"{alias}." if alias else ""
    return f"{column}ended_at IS NULL AND {column}state IN ({sql_states(ACTIVE_STATES)})"


def sql_states(states: Iterable[State]) -> str:
    """A SQL `IN` list of state literals (the values of `State`, never user input)."""
    return ",".join(f"'{state.value}'" for state in states)


_sequence = itertools.count()


def new_execution_id() -> str:
    """Sortable by creation time (milliseconds, then a per-process counter), unique across processes."""
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{next(_sequence) % 0x1000000:06x}{os.urandom(5).hex()}"


def list_executions(
    store: Store, *, flow: str | None = None, state: str | None = None, trigger: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The `gitsync executions` JSON objects, newest first (read-only)."""
    where, params = [], []
    for column, value in (("flow_uid", flow), ("state", state), ("trigger_uid", trigger)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = """SELECT id, flow_uid AS flow, revision, commit_sha AS "commit", state, trigger_kind,
                    trigger_uid AS "trigger", scheduled_at, created_at, started_at, ended_at, inputs, outputs,
                    labels, trigger_vars, error, replay_of
             FROM executions"""
    where.append(f"state != '{AHEAD}'")
    sql += " WHERE " + " AND ".join(where) + " ORDER BY id DESC LIMIT ?"
    rows = store.query(sql, (*params, limit))
    for row in rows:
        for key in ("inputs", "outputs", "labels", "trigger_vars"):
            row[key] = loads(row[key]) or {}
        row["task_runs"] = task_run_rows.task_runs(store, row["id"])
    return rows


# -- what an execution pins: the flow's active revision, or a given one ------------------------------------------


def active_flow(store: Store, flow_uid: str) -> dict[str, Any] | None:
    """The flow's active revision, commit, source and `disabled` flag; None when no such flow is synced."""
    return store.query_one("SELECT revision, commit_sha, source, disabled FROM flows WHERE uid = ?", (flow_uid,))


def revision_source(store: Store, flow_uid: str, revision: int) -> dict[str, Any] | None:
    """The path and YAML text of a revision that was not deleted; None when there is none."""
    return store.query_one(
        "SELECT path, text FROM revisions WHERE uid = ? AND revision = ? AND deleted = 0", (flow_uid, revision)
    )


def revision_commit(store: Store, flow_uid: str, revision: int) -> str:
    """The commit a revision was applied from ("" when the revision is unknown)."""
    row = store.query_one("SELECT commit_sha FROM revisions WHERE uid = ? AND revision = ?", (flow_uid, revision))
    return row["commit_sha"] if row else ""


# -- one execution's life ------------------------------------------------------------------------------------------


def create_execution(
    store: Store,
    *,
    flow_uid: str,
    revision: int,
    commit: str,
    inputs: dict[str, Any],
    labels: dict[str, str] | None = None,
    trigger: dict[str, Any] | None = None,
    trigger_uid: str | None = None,
    parent: str | None = None,
    source: str | None = None,
    owner: str | None = None,
    kind: TriggerKind = "manual",
    execution_id: str | None = None,
    replay: tuple[str, str] | None = None,
    note: str | None = None,
) -> str:
    """A new CREATED execution (inputs already resolved); its id (`execution_id`: one `new_execution_id()` gave
    already, e.g. its FILE inputs were stored under it; else a new one). `owner`: the process that will start it.
    `replay`: the execution it replays and that execution's task run it runs again from; `note`: its first log line."""
    execution_id = execution_id or new_execution_id()
    replay_of, replay_from = replay or (None, None)
    with store.atomic() as conn:
        if note is not None:
            conn.execute(_NOTE, (execution_id, now_iso(), note))
        conn.execute(
            """INSERT INTO executions (id, flow_uid, revision, commit_sha, state, trigger_kind, trigger_uid, created_at,
                                       inputs, labels, trigger_vars, source, parent_execution, owner, replay_of,
                                       replay_from)
               VALUES (?, ?, ?, ?, 'CREATED', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                execution_id,
                flow_uid,
                revision,
                commit,
                kind,
                trigger_uid,
                now_iso(),
                dumps(inputs),
                dumps(labels or {}),
                dumps(trigger or {}),
                source,
                parent,
                owner,
                replay_of,
                replay_from,
            ),
        )
    return execution_id


_NOTE = "INSERT INTO logs (execution_id, task_run_id, at, level, message) VALUES (?, NULL, ?, 'INFO', ?)"


def get_execution(store: Store, execution_id: str) -> dict[str, Any] | None:
    """The execution's whole row (JSON columns still encoded); None when there is none."""
    return store.query_one(f"SELECT * FROM executions WHERE id = ? AND state != '{AHEAD}'", (execution_id,))


def execution_state(store: Store, execution_id: str) -> str | None:
    row = store.query_one(f"SELECT state FROM executions WHERE id = ? AND state != '{AHEAD}'", (execution_id,))
    return row["state"] if row else None


def admit(
    store: Store,
    execution: Mapping[str, Any],
    limit: int | None = None,
    over_limit: State = State.QUEUED,
    owner: str | None = None,
    admitted: Admitted | None = None,
    reporting: frozenset[str] | None = None,
) -> State | None:
    """Ownership, trigger overlap and flow concurrency, decided and written in one transaction.

    The state found, untouched, when the execution is no longer CREATED or another live owner holds it; QUEUED
    while an earlier execution of the same trigger is active; `over_limit` (QUEUED, CANCELLED or FAILED) when
    `limit` executions of the flow already hold a slot; else RUNNING, owned by `owner`, and None is returned.
    With `admitted`, the RUNNING state is the engine's first one, written whole in that same transaction: its
    start time and labels, and its `pending` commit status (`reporting` as in `record_state`); the engine then
    need not write it again.
    """
    execution_id = execution["id"]
    with store.atomic() as conn:
        current = conn.execute(
            """SELECT state, owner IN (SELECT id FROM owners) AND owner IS NOT ? AS taken FROM executions
               WHERE id = ?""",
            (owner, execution_id),
        ).fetchone()
        if current is None or current["state"] != State.CREATED.value or current["taken"]:
            return State(current["state"]) if current is not None else State.CANCELLED
        if execution["trigger_uid"]:
            earlier = conn.execute(EARLIER_ACTIVE, (execution["trigger_uid"], execution_id)).fetchone()
            if earlier is not None:
                conn.execute("UPDATE executions SET state = 'QUEUED' WHERE id = ?", (execution_id,))
                return State.QUEUED
        if limit is not None:
            running = conn.execute(
                f"""SELECT count(*) FROM executions WHERE flow_uid = ? AND state IN ({sql_states(SLOT_STATES)})
                    AND id != ?""",
                (execution["flow_uid"], execution_id),
            ).fetchone()[0]
            if running >= limit:
                ended = None if over_limit == State.QUEUED else now_iso()
                conn.execute(
                    "UPDATE executions SET state = ?, ended_at = ?, error = ? WHERE id = ?",
                    (over_limit.value, ended, f"flow concurrency limit {limit} reached", execution_id),
                )
                return over_limit
        if admitted is None:
            conn.execute(
                "UPDATE executions SET state = 'RUNNING', started_at = ?, owner = ? WHERE id = ?",
                (now_iso(), owner, execution_id),
            )
            return None
        params = (iso(admitted.started_at), dumps(admitted.labels), owner, execution_id)
        rows = conn.execute(_ADMIT_RUNNING, params).fetchall()  # read whole, so the statement is done
        _enqueue_execution_status(conn, execution_id, State.RUNNING, None, reporting, rows[0])
    return None


EARLIER_ACTIVE = f"SELECT 1 FROM executions WHERE trigger_uid = ? AND id < ? AND {active()} LIMIT 1"
"""An earlier execution of the same trigger is still active (the new one waits, QUEUED)."""


@dataclass(frozen=True)
class Admitted:
    """The RUNNING state an admission writes (`admit`): when the execution started and its labels."""

    started_at: datetime
    labels: Mapping[str, str]


_ADMIT_RUNNING = """UPDATE executions SET state = 'RUNNING', started_at = ?, labels = ?, owner = ? WHERE id = ?
                    RETURNING flow_uid, commit_sha, source, started_at, ended_at"""


_STATUS_OF = {
    State.RUNNING: "pending",
    State.SUCCESS: "success",
    State.WARNING: "warning",
    State.FAILED: "failure",
    State.KILLED: "error",
    State.CANCELLED: "error",
}


def record_state(
    store: Store,
    execution_id: str,
    state: State,
    fields: Mapping[str, Any],
    reporting: frozenset[str] | None = None,
    owner: str | None = None,
) -> bool:
    """The engine's state change of an execution, and when it starts or ends, its commit status: one transaction.

    `fields` may hold started_at/ended_at (datetimes), outputs/labels (JSON values) and error. An `error` given
    replaces the one stored, and None clears it: the engine's end of an execution says what ended it (nothing when
    it did not fail), whatever an earlier step wrote (e.g. the concurrency limit that queued it). A RUNNING state
    written after a kill was requested stays KILLING. `reporting` names the sources that post statuses (None:
    every source). Nothing is written, and False returned, when `owner` no longer owns the execution (another
    process resolved it as lost while this one could not renew its lease).
    """
    sets = ["state = CASE WHEN kill_requested = 1 AND ? = 'RUNNING' THEN 'KILLING' ELSE ? END"]
    params: list[Any] = [state.value, state.value]
    for key in ("started_at", "ended_at"):
        if fields.get(key) is not None:
            sets.append(f"{key} = ?")
            params.append(iso(fields[key]))
    for key in ("outputs", "labels"):
        if key in fields and fields[key] is not None:
            sets.append(f"{key} = ?")
            params.append(dumps(fields[key]))
    if "error" in fields:
        sets.append("error = ?")
        params.append(fields["error"] or None)
    fence = "" if owner is None else " AND owner = ?"
    with store.atomic() as conn:
        rows = conn.execute(
            f"UPDATE executions SET {', '.join(sets)} WHERE id = ?{fence} "
            "RETURNING flow_uid, commit_sha, source, started_at, ended_at",
            (*params, execution_id, *(() if owner is None else (owner,))),
        ).fetchall()  # one row, or none when the fence refused it; read whole, so the statement is done
        row = rows[0] if rows else None
        if row is not None and (fields.get("started_at") is not None or state.is_terminal):
            _enqueue_execution_status(conn, execution_id, state, fields.get("error"), reporting, row)
    return row is not None


def _enqueue_execution_status(
    conn: sqlite3.Connection,
    execution_id: str,
    state: State,
    error: str | None,
    reporting: frozenset[str] | None,
    row: sqlite3.Row,
) -> None:
    """`gitsync/<namespace>.<flow>` on the commit of the revision the execution runs, in the caller's transaction
    (`row`: its flow_uid, commit_sha, source, started_at and ended_at as just written).

    Executions of flows that are not synced from git (`gitsync run --file`) have no commit and post nothing.
    """
    status = _STATUS_OF.get(state)
    if status is None or not row["commit_sha"] or not row["source"]:
        return
    if reporting is not None and row["source"] not in reporting:
        return  # the source has no `status:` block: nothing would ever send it
    if state == State.RUNNING:
        description = f"running (execution {execution_id})"
    else:
        took = ""
        if row["started_at"] and row["ended_at"]:
            seconds = datetime.fromisoformat(row["ended_at"]) - datetime.fromisoformat(row["started_at"])
            took = f" in {seconds.total_seconds():.1f}s"
        description = f"{state.value.lower()}{took}" + (f": {error}" if error and state.is_failure else "")
    enqueue_status(conn, row["source"], row["commit_sha"], f"gitsync/{row['flow_uid']}", status, description, None)


def finish_execution(store: Store, execution_id: str, state: State, error: str | None = None) -> None:
    """End an execution the engine could not end itself (it crashed); an error already recorded is kept."""
    with store.atomic() as conn:
        conn.execute(
            "UPDATE executions SET state = ?, ended_at = ?, error = coalesce(error, ?) WHERE id = ?",
            (state.value, now_iso(), error, execution_id),
        )


def retry_execution(store: Store, execution_id: str, owner: str | None = None) -> str:
    """Flow-level retry: the execution becomes RETRIED and a CREATED copy (next attempt, same chain), owned by
    `owner` (the process that will start it), is written."""
    new_id = new_execution_id()
    with store.atomic() as conn:
        conn.execute(  # its failure ended it (and wrote ended_at); never left looking unended
            "UPDATE executions SET state = 'RETRIED', ended_at = coalesce(ended_at, ?) WHERE id = ?",
            (now_iso(), execution_id),
        )
        conn.execute(
            """INSERT INTO executions (id, flow_uid, revision, commit_sha, state, trigger_kind, trigger_uid, created_at,
                                       inputs, labels, trigger_vars, source, parent_execution, original_id, attempt,
                                       owner)
               SELECT ?, flow_uid, revision, commit_sha, 'CREATED', 'retry', NULL, ?, inputs, labels, trigger_vars,
                      source, parent_execution, coalesce(original_id, id), attempt + 1, ?
               FROM executions WHERE id = ?""",
            (new_id, now_iso(), owner, execution_id),
        )
    return new_id


OLDEST_QUEUED = "SELECT id FROM executions WHERE +flow_uid = ? AND state = 'QUEUED' ORDER BY id LIMIT 1"
"""`+flow_uid`: read through the state index (few executions are QUEUED), never all the flow's executions."""


def oldest_queued(store: Store, flow_uid: str) -> list[str]:
    """The id of the flow's oldest QUEUED execution (an empty list when none is queued)."""
    rows = store.query(OLDEST_QUEUED, (flow_uid,))
    return [row["id"] for row in rows]


def release_queued(store: Store, execution_id: str) -> None:
    """A QUEUED execution goes back to CREATED, to be admitted again (nothing if it left QUEUED meanwhile)."""
    with store.atomic() as conn:
        conn.execute("UPDATE executions SET state = 'CREATED' WHERE id = ? AND state = 'QUEUED'", (execution_id,))


def created_executions(store: Store, owner: str | None = None) -> list[str]:
    """The CREATED executions nobody else will start (no owner, a gone one, or `owner`), oldest first."""
    rows = store.query(
        """SELECT id FROM executions WHERE state = 'CREATED'
           AND (owner IS NULL OR owner IS ? OR owner NOT IN (SELECT id FROM owners)) ORDER BY id""",
        (owner,),
    )
    return [row["id"] for row in rows]


def hand_over(store: Store, execution_id: str, owner: str) -> bool:
    """A CREATED execution of `owner` is left to the daemon (its owner cleared); False when it was not one."""
    with store.atomic() as conn:
        changed = conn.execute(
            "UPDATE executions SET owner = NULL WHERE id = ? AND owner = ? AND state = 'CREATED'",
            (execution_id, owner),
        ).rowcount
    return bool(changed)


def owned_active(store: Store, owner: str) -> list[str]:
    """The executions `owner` holds that have not ended, oldest first."""
    rows = store.query(
        f"SELECT id FROM executions WHERE owner = ? AND state IN ({sql_states(ACTIVE_STATES)}) ORDER BY id", (owner,)
    )
    return [row["id"] for row in rows]


# -- triggers that start executions, and what the daemon measures of fires ----------------------------------------


def flow_triggers(store: Store, types: Collection[str]) -> list[dict[str, Any]]:
    """Active triggers of these types on enabled flows: uid, flow_uid and the decoded spec."""
    rows = store.query(
        f"""SELECT t.uid, t.flow_uid, t.spec FROM triggers t JOIN flows f ON f.uid = t.flow_uid
            WHERE t.type IN ({",".join("?" * len(types))}) AND t.disabled = 0 AND t.paused = 0
              AND f.disabled = 0""",
        tuple(types),
    )
    for row in rows:
        row["spec"] = loads(row["spec"]) or {}
    return rows


def webhook_triggers(store: Store, flow_uid: str, types: Collection[str]) -> list[dict[str, Any]]:
    """The flow's enabled triggers of these types (a paused one still answers), when the flow is enabled."""
    rows = store.query(
        f"""SELECT t.uid, t.spec FROM triggers t JOIN flows f ON f.uid = t.flow_uid
            WHERE t.flow_uid = ? AND t.type IN ({",".join("?" * len(types))})
              AND t.disabled = 0 AND f.disabled = 0""",
        (flow_uid, *types),
    )
    for row in rows:
        row["spec"] = loads(row["spec"]) or {}
    return rows


def fire_times(store: Store, execution_ids: Sequence[str]) -> list[dict[str, Any]]:
    """flow_uid, scheduled_at and created_at of these executions (in no particular order)."""
    return query_in(
        store, "SELECT flow_uid, scheduled_at, created_at FROM executions WHERE id IN ({ids})", execution_ids
    )
