"""The windows of Flow triggers in SQLite: which entries of a trigger's preconditions (or MultipleCondition) the
upstream executions satisfied, and when (`trigger_window_marks`).

What an event satisfies is decided by `gitsync.schedule.flow_triggers` (pure); here it is recorded and the window
is read back in ONE transaction, so two upstream ends racing each other see each other's mark, and a restart
(or another process on the same file) loses nothing. A mark counts while it lies in the window its trigger's
time rule gives at the moment of the event (`flow_triggers.bounds`); marks that fell out of it are deleted then,
and a complete window is emptied when its `resetOnSuccess` is true (the default), so the next fire needs every
entry again. A retired trigger's marks go with it (`triggers.delete_triggers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gitsync.schedule.flow_triggers import Window, bounds
from gitsync.state.database import Store, iso


def settle(store: Store, trigger_uid: str, windows: Sequence[Window], now: datetime, execution_id: str) -> bool:
    """Record what the upstream execution `execution_id`, ended at `now`, satisfied in each window of the
    trigger, and tell whether every window is complete."""
    complete = True
    with store.atomic() as conn:
        ids = [w.id for w in windows]
        conn.execute(
            f"DELETE FROM trigger_window_marks WHERE trigger_uid = ? AND window_id NOT IN ({_marks(ids)})",
            (trigger_uid, *ids),
        )
        for window in windows:
            span = bounds(window.span, now)
            if span is None:
                complete = False  # outside its daily window or past its deadline: this end does not count
                continue
            start, end = iso(span[0]), iso(span[1])
            conn.execute(
                f"""DELETE FROM trigger_window_marks WHERE trigger_uid = ? AND window_id = ?
                    AND (marked_at < ? OR entry NOT IN ({_marks(window.entries)}))""",
                (trigger_uid, window.id, start, *window.entries),
            )
            conn.executemany(
                """INSERT INTO trigger_window_marks (trigger_uid, window_id, entry, marked_at, execution_id)
                   VALUES (?, ?, ?, ?, ?) ON CONFLICT (trigger_uid, window_id, entry)
                   DO UPDATE SET marked_at = excluded.marked_at, execution_id = excluded.execution_id""",
                [(trigger_uid, window.id, entry, iso(now), execution_id) for entry in window.satisfied],
            )
            marked = {
                row["entry"]
                for row in conn.execute(
                    """SELECT entry FROM trigger_window_marks WHERE trigger_uid = ? AND window_id = ?
                       AND marked_at >= ? AND marked_at < ?""",
                    (trigger_uid, window.id, start, end),
                )
            }
            done = set(window.entries) <= marked
            if done and window.reset_on_success:
                conn.execute(
                    "DELETE FROM trigger_window_marks WHERE trigger_uid = ? AND window_id = ?", (trigger_uid, window.id)
                )
            complete = complete and done
    return complete


def marks(store: Store, trigger_uid: str) -> list[dict[str, Any]]:
    """The trigger's marks (window_id, entry, marked_at, execution_id), by window and entry (read-only)."""
    return store.query(
        """SELECT window_id, entry, marked_at, execution_id FROM trigger_window_marks WHERE trigger_uid = ?
           ORDER BY window_id, entry""",
        (trigger_uid,),
    )


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
