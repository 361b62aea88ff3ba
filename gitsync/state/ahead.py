"""Fires written ahead of their time (`executions.state = 'AHEAD'`) and the trigger bookkeeping written with them.

`gitsync.state.fires.prepare_fires` writes a fire's AHEAD row and, in the same transaction, advances its trigger's
bookkeeping (`last_scheduled_at` to the fire's time, `next_fire` to the time after), keeping what it replaced:
`ahead_at` (the time written ahead, the old `next_fire`) and `ahead_last` (the old `last_scheduled_at`). So the
release at the fire time writes only the execution rows. The advance is *pending* while the trigger's AHEAD row at
`ahead_at` exists, and stands once that row is released (it is no longer AHEAD).

Every deletion of AHEAD rows is here, and each first puts back the bookkeeping of the triggers whose pending row it
deletes: a fire deleted unreleased (its trigger changed, it is too late, the process stopped or was killed) was
never decided, and its time is decided again from the trigger as it is then (after a crash, as a missed time, by
recoverMissedSchedules).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from gitsync.state.executions import AHEAD


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
