"""The `syncs` table: one row per sync of a source, whatever its outcome, with its errors and warnings."""

from __future__ import annotations

import sqlite3
from typing import Any

from gitsync.state.database import Store, dumps, loads, now_iso


def insert_sync(
    conn: sqlite3.Connection,
    source: str,
    commit: str | None,
    previous: str | None,
    outcome: str,
    started_at: str,
    summary: str,
    errors: list[dict[str, Any]] | None = None,
    warnings: list[dict[str, Any]] | None = None,
    plan: str | None = None,
) -> int:
    """The sync's row (in the transaction of what it applied, if anything) with its plan's markdown; its id."""
    cursor = conn.execute(
        """INSERT INTO syncs (source, commit_sha, previous_commit, outcome, started_at, ended_at, summary, errors,
                              warnings, plan) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            source,
            commit,
            previous,
            outcome,
            started_at,
            now_iso(),
            summary,
            dumps(errors or []),
            dumps(warnings or []),
            plan,
        ),
    )
    return int(cursor.lastrowid or 0)


_COLUMNS = (
    'id, source, commit_sha AS "commit", previous_commit, outcome, started_at, ended_at, summary, errors, warnings'
)


def list_syncs(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The latest syncs, newest first."""
    return _decoded(store.rows_where("syncs", select=_COLUMNS, order_by="id DESC", limit=int(limit)))


def get_sync(store: Store, sync_id: int) -> dict[str, Any] | None:
    """One sync with all its errors and warnings, or None."""
    rows = _decoded(store.rows_where("syncs", "id = ?", (int(sync_id),), select=_COLUMNS))
    return rows[0] if rows else None


def _decoded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["errors"] = loads(row["errors"]) or []
        row["warnings"] = loads(row["warnings"]) or []
    return rows


def syncs_page(
    store: Store, source: str | None = None, before: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Syncs (of `source`), newest first, with an id below `before`; at most `limit`. Without the plan."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if source:
        where.append("source = ?")
        params.append(source)
    if before:
        where.append("id < ?")
        params.append(int(before))
    rows = store.query(
        f"SELECT {_COLUMNS} FROM syncs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*params, int(limit))
    )
    return _decoded(rows)


def sync_plan(store: Store, sync_id: int) -> str | None:
    """The plan a sync applied or refused, in the markdown of the pull-request comment; None when not recorded."""
    row = store.query_one("SELECT plan FROM syncs WHERE id = ?", (int(sync_id),))
    return row["plan"] if row else None


def last_syncs(store: Store) -> dict[str, dict[str, Any]]:
    """The latest sync of each source, by source."""
    rows = store.query(f"SELECT {_COLUMNS} FROM syncs WHERE id IN (SELECT max(id) FROM syncs GROUP BY source)")
    return {row["source"]: row for row in _decoded(rows)}
