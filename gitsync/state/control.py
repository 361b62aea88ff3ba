"""Kill and resume requests in SQLite: written by any process (the CLI, the API), read by the one running the
execution (`gitsync.executions.control` polls them).

Each function is one unit of work in one `atomic()` transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from gitsync.state import task_runs as task_run_rows
from gitsync.state.database import Store, dumps, iso, loads, now_iso, query_in
from gitsync.state.executions import AHEAD, NOT_STARTED_STATES
from runner.states import State


def request_kill(store: Store, execution_id: str, gone: Collection[str] = ()) -> tuple[State | None, State | None]:
    """Ask for a kill: (the state found, the state written), in one transaction.

    Not started (CREATED, QUEUED): KILLED now. Started, by an owner that is gone (named in `gone`, or its row
    removed): KILLED now, its unfinished task runs too. Started by a live owner: KILLING, with the request flagged
    for that process. Nothing is written when there is no such execution (None, None) or it already ended (its
    state, None).
    """
    with store.atomic() as conn:
        row = conn.execute(
            "SELECT state, owner, owner IN (SELECT id FROM owners) AS registered FROM executions "
            f"WHERE id = ? AND state != '{AHEAD}'",
            (execution_id,),
        ).fetchone()
        if row is None:
            return None, None
        found = State(row["state"])
        if found.is_terminal:
            return found, None
        if found in NOT_STARTED_STATES:
            conn.execute(
                "UPDATE executions SET state = 'KILLED', ended_at = ?, error = 'killed before it started' WHERE id = ?",
                (now_iso(), execution_id),
            )
            return found, State.KILLED
        if row["owner"] is not None and (not row["registered"] or row["owner"] in gone):
            reason = "killed; the process that ran it was gone, so nothing was left running"
            now = datetime.now(UTC)
            conn.execute(
                "UPDATE executions SET state = 'KILLED', ended_at = ?, error = ?, owner = NULL WHERE id = ?",
                (iso(now), reason, execution_id),
            )
            task_run_rows.end_unfinished(conn, execution_id, State.KILLED, reason, now)
            return found, State.KILLED
        conn.execute("UPDATE executions SET kill_requested = 1, state = 'KILLING' WHERE id = ?", (execution_id,))
        return found, State.KILLING


def request_resume(store: Store, execution_id: str, inputs: dict[str, Any]) -> State | None:
    """Leave the resume inputs for a PAUSED execution; the state found (None: no such execution).

    Nothing is written unless the execution is PAUSED.
    """
    with store.atomic() as conn:
        row = conn.execute(
            f"SELECT state FROM executions WHERE id = ? AND state != '{AHEAD}'", (execution_id,)
        ).fetchone()
        if row is None:
            return None
        found = State(row["state"])
        if found == State.PAUSED:
            conn.execute("UPDATE executions SET resume_inputs = ? WHERE id = ?", (dumps(inputs), execution_id))
        return found


def kill_requested(store: Store, execution_ids: Sequence[str], owner: str | None = None) -> list[str]:
    """Those of the executions to stop: their kill was requested, their row is gone, or (with `owner`) another
    process resolved them (they are no longer `owner`'s). One query per 500 ids."""
    rows = query_in(store, "SELECT id, kill_requested, owner FROM executions WHERE id IN ({ids})", execution_ids)
    found = {row["id"]: row for row in rows}
    stop = []
    for execution_id in execution_ids:
        row = found.get(execution_id)
        if row is None or row["kill_requested"] or (owner is not None and row["owner"] != owner):
            stop.append(execution_id)
    return stop


def take_resume(store: Store, execution_id: str) -> tuple[bool, dict[str, Any] | None]:
    """Poll a paused execution: (stop, inputs).

    (True, None) when its kill was requested or its row is gone; (False, inputs) when a resume was requested (the
    request is then cleared); (False, None) while neither happened.
    """
    row = store.query_one("SELECT resume_inputs, kill_requested FROM executions WHERE id = ?", (execution_id,))
    if row is None or row["kill_requested"]:
        return True, None
    if row["resume_inputs"] is None:
        return False, None
    with store.atomic() as conn:
        conn.execute("UPDATE executions SET resume_inputs = NULL WHERE id = ?", (execution_id,))
    return False, loads(row["resume_inputs"]) or {}
