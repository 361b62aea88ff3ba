"""What polling triggers fired (`trigger_polls`): item -> version and the execution it started, per trigger.

`record` is called inside the transaction that writes the execution (`Store.atomic` joins it), so an item is
either fired and recorded or neither; `forget` drops items their trigger has taken away (moved, deleted)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gitsync.state.database import Store, loads, now_iso, query_in


def polling_rows(store: Store) -> list[dict[str, Any]]:
    """Every active trigger on an enabled flow, with its type (the caller keeps the polling ones)."""
    rows = store.query(
        """SELECT t.uid, t.flow_uid, t.trigger_id, t.type, t.spec FROM triggers t JOIN flows f ON f.uid = t.flow_uid
           WHERE t.disabled = 0 AND t.paused = 0 AND f.disabled = 0 AND t.cron IS NULL ORDER BY t.uid"""
    )
    for row in rows:
        row["spec"] = loads(row["spec"]) or {}
    return rows


def generation(store: Store) -> int:
    """The schedule generation, which SQL triggers bump on any change of a trigger or a flow: the poller reads the
    triggers again only when it moved."""
    rows = store.query("SELECT n FROM schedule_generation")
    return int(rows[0]["n"]) if rows else -1


def fired(store: Store, trigger_uid: str, items: Sequence[str]) -> dict[str, str]:
    """item -> the version fired, for those of `items` this trigger fired."""
    if not items:
        return {}
    sql = "SELECT item, version FROM trigger_polls WHERE trigger_uid = ? AND item IN ({ids})"
    rows = query_in(store, sql, items, (trigger_uid,))
    return {row["item"]: row["version"] for row in rows}


def record(store: Store, trigger_uid: str, versions: Iterable[tuple[str, str]], execution_id: str) -> None:
    """Write that these items (at these versions) fired `execution_id`; joins the caller's transaction."""
    at = now_iso()
    with store.atomic() as conn:
        conn.executemany(
            """INSERT INTO trigger_polls (trigger_uid, item, version, execution_id, fired_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (trigger_uid, item) DO UPDATE SET version = excluded.version,
                   execution_id = excluded.execution_id, fired_at = excluded.fired_at""",
            [(trigger_uid, item, version, execution_id, at) for item, version in versions],
        )


def forget(store: Store, trigger_uid: str, items: Iterable[str]) -> None:
    with store.atomic() as conn:
        conn.executemany("DELETE FROM trigger_polls WHERE trigger_uid = ? AND item = ?",
                         [(trigger_uid, item) for item in items])  # fmt: skip
