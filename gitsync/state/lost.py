"""What a gone owner left: executions resolved as lost by another process, and a process's own, ended at once
when it must exit (see `gitsync.executions.ownership` for when an owner counts as gone)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from gitsync.state import task_runs as task_run_rows
from gitsync.state.database import Store, execute_in, iso
from gitsync.state.executions import INTERRUPTED_STATES, NOT_STARTED_STATES, WORKER_LOST, sql_states
from gitsync.state.outbox import enqueue_status
from gitsync.state.owners import describe
from runner.states import ACTIVE_STATES, State


def resolve_lost(
    store: Store,
    me: str | None,
    gone: Sequence[Mapping[str, Any]],
    now: datetime,
    reporting: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """What owners that are gone left behind, resolved in one transaction; never the executions of `me`.

    The `gone` owners' rows are removed. Their executions (and any started execution without an owner, written
    before owners existed) that were RUNNING or PAUSED become FAILED "worker lost"; KILLING ones become KILLED;
    their unfinished task runs end the same way, and a failure status is queued for their commit when their
    source reports (`reporting`; None: every source). CREATED and QUEUED ones lose their owner, so a daemon starts
    them. Returns the resolved executions: id, flow_uid, state, error.
    """
    labels = {row["id"]: describe(row) for row in gone}
    with store.atomic() as conn:
        execute_in(conn, "DELETE FROM owners WHERE id IN ({ids})", list(labels))
        orphaned = "(e.owner IS NULL OR e.owner NOT IN (SELECT id FROM owners))"
        mine = "" if me is None else "AND (e.owner IS NULL OR e.owner != ?)"
        rows = conn.execute(
            f"""SELECT e.id, e.flow_uid, e.state, e.owner, e.commit_sha, coalesce(e.source, f.source) AS source
                FROM executions e LEFT JOIN flows f ON f.uid = e.flow_uid
                WHERE e.state IN ({sql_states(INTERRUPTED_STATES)}) AND {orphaned} {mine} ORDER BY e.id""",
            () if me is None else (me,),
        ).fetchall()
        resolved = []
        for row in rows:
            who = labels.get(row["owner"]) if row["owner"] else None
            killing = row["state"] == State.KILLING.value
            if killing:
                state, reason = State.KILLED, f"killed: {who or 'the process that ran it'} was gone before it stopped"
            else:
                state, reason = (
                    State.FAILED,
                    (f"worker lost: {who} stopped while the execution was running" if who else WORKER_LOST),
                )
            conn.execute(
                "UPDATE executions SET state = ?, ended_at = ?, error = ?, owner = NULL WHERE id = ?",
                (state.value, iso(now), reason, row["id"]),
            )
            task_run_rows.end_unfinished(conn, row["id"], state, reason, now)
            reports = row["source"] and (reporting is None or row["source"] in reporting)
            if reports and row["commit_sha"]:  # the execution's own context, so its pending status is closed
                status = "error" if killing else "failure"
                enqueue_status(
                    conn, row["source"], row["commit_sha"], f"gitsync/{row['flow_uid']}", status, reason, None
                )
            resolved.append({"id": row["id"], "flow_uid": row["flow_uid"], "state": state, "error": reason})
        conn.execute(
            f"""UPDATE executions SET owner = NULL WHERE state IN ({sql_states(NOT_STARTED_STATES)})
                AND owner IS NOT NULL AND owner NOT IN (SELECT id FROM owners) {mine.replace("e.", "")}""",
            () if me is None else (me,),
        )
    return resolved


def abandon_owned(path: str, owner: str, reason: str, timeout: float = 1.0) -> int:
    """Best effort, for a process about to exit at once (a second Ctrl-C): its active executions become KILLED
    with `reason` and its owner row goes, on a connection of its own (the process's store may be mid-write).
    When the database is busy past `timeout`, nothing is written: the lease then runs out and another process
    resolves them. How many executions were ended."""
    moment = datetime.now(UTC)
    now = iso(moment)
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error:
        return 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        ids = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM executions WHERE owner = ? AND state IN ({sql_states(ACTIVE_STATES)})", (owner,)
            )
        ]
        for execution_id in ids:
            conn.execute(
                "UPDATE executions SET state = 'KILLED', ended_at = ?, error = ?, owner = NULL WHERE id = ?",
                (now, reason, execution_id),
            )
            task_run_rows.end_unfinished(conn, execution_id, State.KILLED, reason, moment)
        conn.execute("DELETE FROM owners WHERE id = ?", (owner,))
        conn.execute("COMMIT")
        return len(ids)
    except sqlite3.Error:
        return 0
    finally:
        conn.close()
