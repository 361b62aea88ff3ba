"""The `triggers` table: every trigger of every active flow, with the scheduler's bookkeeping.

`type` holds the registry's canonical type name (migration 5 rewrote older rows), so a reader compares
with one name, never with alias lists. Writes take the connection of the caller's `store.atomic()` block.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gitsync.state.database import Store, dumps, loads, query_in
from gitsync.state.executions import delete_ahead, pending


@dataclass(frozen=True)
class TriggerRow:
    uid: str
    flow_uid: str
    trigger_id: str
    type: str
    spec: dict[str, Any]
    cron: str | None
    with_seconds: bool
    timezone: str | None
    disabled: bool


def upsert_trigger(conn: sqlite3.Connection, row: TriggerRow, registered_at: str) -> None:
    """Add or change a trigger; a changed trigger keeps its bookkeeping (registration and last scheduled time),
    and loses its fires written ahead (`state.fires`): they were written for what it was.

    Plain SQL: sqlite-utils' upsert would also overwrite `registered_at`, which only an insert may set.
    """
    delete_ahead(conn, [row.uid])
    conn.execute(
        """INSERT INTO triggers (uid, flow_uid, trigger_id, type, spec, cron, with_seconds, timezone, disabled,
                                 registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(uid) DO UPDATE SET type = excluded.type, spec = excluded.spec, cron = excluded.cron,
             with_seconds = excluded.with_seconds, timezone = excluded.timezone, disabled = excluded.disabled""",
        (
            row.uid,
            row.flow_uid,
            row.trigger_id,
            row.type,
            dumps(row.spec),
            row.cron,
            int(row.with_seconds),
            row.timezone,
            int(row.disabled),
            registered_at,
        ),
    )


def trigger_uids_of(conn: sqlite3.Connection, flow_uids: Sequence[str]) -> dict[str, str]:
    """trigger uid -> flow uid for the stored triggers of these flows."""
    rows = query_in(conn, "SELECT uid, flow_uid FROM triggers WHERE flow_uid IN ({ids})", flow_uids)
    return {row["uid"]: row["flow_uid"] for row in rows}


def delete_triggers(conn: sqlite3.Connection, uids: Sequence[str]) -> None:
    """Retire triggers: their rows, their windows' marks and their fires written ahead (`state.fires`)."""
    delete_ahead(conn, uids)  # before the rows go: it reads their last decided time
    conn.executemany("DELETE FROM triggers WHERE uid = ?", [(uid,) for uid in uids])
    conn.executemany("DELETE FROM trigger_window_marks WHERE trigger_uid = ?", [(uid,) for uid in uids])


def count_triggers(store: Store, source: str) -> int:
    """Triggers of the source's active flows (the daemon's gauges)."""
    row = store.query_one(
        "SELECT count(*) AS n FROM triggers t JOIN flows f ON f.uid = t.flow_uid WHERE f.source = ?", (source,)
    )
    return int(row["n"]) if row else 0


def list_triggers(
    store: Store, flow_uid: str | None = None, *, after: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The triggers (of `flow_uid`; after the uid `after`; at most `limit`) with their flow's state, by uid (CLI
    `gitsync triggers`, HTTP /api/v1/triggers). The bookkeeping is what was decided: an advance written ahead with
    a fire not yet released (`gitsync.state.ahead`) is not."""
    where, params = ["1 = 1"], []
    if flow_uid is not None:
        where.append("t.flow_uid = ?")
        params.append(flow_uid)
    if after is not None:
        where.append("t.uid > ?")
        params.append(after)
    return _rows(store, " AND ".join(where), params, "t.uid", limit)


def soonest(store: Store, limit: int = 10) -> list[dict[str, Any]]:
    """The active triggers of enabled flows with the soonest next fire, soonest first, as `list_triggers` has them."""
    where = "t.next_fire IS NOT NULL AND t.disabled = 0 AND t.paused = 0 AND f.disabled = 0"
    return _rows(store, where, [], "t.next_fire, t.uid", limit)


def _rows(store: Store, where: str, params: list[Any], order: str, limit: int | None) -> list[dict[str, Any]]:
    rows = store.query(
        f"""SELECT t.uid, t.flow_uid, t.trigger_id, t.type, t.cron, t.with_seconds = 1 AS with_seconds, t.timezone,
                   t.disabled = 1 AS disabled, t.paused = 1 AS paused, t.next_fire, t.last_scheduled_at,
                   t.registered_at, t.spec, f.disabled = 1 AS flow_disabled, f.revision, f.commit_sha AS "commit",
                   {pending("t")} AS ahead, t.ahead_at, t.ahead_last
            FROM triggers t JOIN flows f ON f.uid = t.flow_uid WHERE {where} ORDER BY {order} LIMIT ?""",
        (*params, -1 if limit is None else int(limit)),
    )
    for row in rows:
        ahead_at, ahead_last = row.pop("ahead_at"), row.pop("ahead_last")
        if row.pop("ahead"):
            row["next_fire"], row["last_scheduled_at"] = ahead_at, ahead_last
        row["spec"] = loads(row["spec"]) or {}
        for key in ("with_seconds", "disabled", "paused", "flow_disabled"):
            row[key] = bool(row[key])
    return rows


def set_paused(store: Store, uid: str, paused: bool) -> bool:
    """Pause or resume a trigger; its fires written ahead are dropped (they were written while it fired). False when
    no trigger has that uid. A sync keeps the flag: the trigger's definition is git's, its pause the operator's."""
    with store.atomic() as conn:
        if conn.execute("SELECT 1 FROM triggers WHERE uid = ?", (uid,)).fetchone() is None:
            return False
        delete_ahead(conn, [uid])
        conn.execute("UPDATE triggers SET paused = ? WHERE uid = ? AND paused != ?", (int(paused), uid, int(paused)))
    return True
