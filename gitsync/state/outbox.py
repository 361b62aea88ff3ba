"""The `outbox` (commit statuses to post, written with what they report) and `outbox_sent` (what each host shows).

Rows are enqueued by syncs, executions and pull-request plans inside the transaction of what they report
(`enqueue_status` takes that transaction's connection). Everything else here is the status sender's
bookkeeping (gitsync.statuses) and the reads of `gitsync statuses` and /healthz; each write is its own short
transaction unless it is given a connection.

A key is (source, commit, context); `source` NULL and '' are the same key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from gitsync.state.database import Store, database, now_iso

OutboxKey = tuple[str, str, str]
"""(source or '', commit sha, context)"""


def enqueue_status(
    conn: sqlite3.Connection,
    source: str | None,
    commit: str,
    context: str,
    state: str,
    description: str,
    target_url: str | None,
) -> None:
    """A commit status to post, in the same transaction as the state it reports (the sender drains it).

    Plain SQL: executions enqueue on every state change, a hot path for sqlite-utils' per-call introspection.
    """
    conn.execute(
        """INSERT INTO outbox (source, commit_sha, context, state, description, target_url, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (source, commit, context, state, description, target_url, now_iso()),
    )


# -- the sender: claiming ---------------------------------------------------------------------------------------


def unsent_rows(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """The oldest rows still to post (neither sent, given up nor superseded), by id."""
    return conn.execute(
        """SELECT id, source, commit_sha, context, state, description, target_url, attempts, next_attempt_at
           FROM outbox WHERE sent_at IS NULL AND given_up = 0 AND superseded = 0
           ORDER BY id LIMIT ?""",
        (limit,),
    ).fetchall()


def supersede(conn: sqlite3.Connection, pairs: Sequence[tuple[int, int]], note: str) -> None:
    """For each (older, newer) row of one key: the older is never posted; the newer keeps the later retry time
    of the two (a back-off in progress holds)."""
    if not pairs:
        return
    conn.executemany("UPDATE outbox SET superseded = 1, last_error = ? WHERE id = ?", [(note, old) for old, _ in pairs])
    conn.executemany(
        """UPDATE outbox SET next_attempt_at = (SELECT o.next_attempt_at FROM outbox o WHERE o.id = ?)
           WHERE id = ? AND (SELECT o.next_attempt_at FROM outbox o WHERE o.id = ?) >
                             COALESCE(next_attempt_at, '')""",
        [(old, new, old) for old, new in pairs],
    )


def note_unconfigured(store: Store, configured: Sequence[str], reasons: Mapping[str, str], default: str) -> int:
    """Note why rows of sources without a provider stay unsent (`reasons[source]`, else `default`).

    They are not given up: configuring the source later delivers them. Returns the rows noted.
    """
    known = list(configured)
    marks = ",".join("?" * len(known)) or "NULL"
    with store.atomic() as conn:
        rows = conn.execute(
            f"""SELECT id, source FROM outbox WHERE sent_at IS NULL AND given_up = 0 AND superseded = 0
                AND last_error IS NULL AND (source IS NULL OR source NOT IN ({marks}))""",
            known,
        ).fetchall()
        conn.executemany(
            "UPDATE outbox SET last_error = ? WHERE id = ?",
            [(reasons.get(r["source"] or "", default), r["id"]) for r in rows],
        )
    return len(rows)


def next_due_at(store: Store, sources: Sequence[str]) -> tuple[int, str | None]:
    """(rows still to post for these sources, the earliest `next_attempt_at` among them: '' when one is due now)."""
    known = list(sources)
    if not known:
        return 0, None
    row = store.query_one(
        f"""SELECT min(COALESCE(next_attempt_at, '')) AS due, count(*) AS n FROM outbox
            WHERE sent_at IS NULL AND given_up = 0 AND superseded = 0 AND source IN ({",".join("?" * len(known))})""",
        tuple(known),
    )
    if not row or not row["n"]:
        return 0, None
    return int(row["n"]), row["due"]


# -- the sender: outcomes of one row ----------------------------------------------------------------------------


def last_sent(store: Store, key: OutboxKey) -> tuple[str, str] | None:
    """The host state and description last posted for the key, or None."""
    row = store.query_one(
        "SELECT state, description FROM outbox_sent WHERE source = ? AND commit_sha = ? AND context = ?", key
    )
    return None if row is None else (row["state"], row["description"])


def record_sent(store: Store, outbox_id: int, key: OutboxKey, state: str, description: str, sent_at: str) -> None:
    """The row was posted: mark it sent, and remember what the host now shows for its key."""
    with store.atomic() as conn:
        conn.execute(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL, next_attempt_at = NULL "
            "WHERE id = ?",
            (sent_at, outbox_id),
        )
        source, commit, context = key
        database(conn).table("outbox_sent").upsert(
            {
                "source": source,
                "commit_sha": commit,
                "context": context,
                "state": state,
                "description": description,
                "outbox_id": outbox_id,
                "sent_at": sent_at,
            },
            pk=("source", "commit_sha", "context"),
        )


def close_unposted(store: Store, outbox_id: int, superseded: bool, note: str) -> None:
    """The row will not be posted (`note` says why)."""
    with store.atomic() as conn:
        conn.execute(
            "UPDATE outbox SET superseded = ?, last_error = ? WHERE id = ?", (int(superseded), note, outbox_id)
        )


def give_up(store: Store, outbox_id: int, reason: str) -> None:
    """A permanent failure: the row is never retried; `reason` is the host's."""
    with store.atomic() as conn:
        conn.execute(
            "UPDATE outbox SET given_up = 1, attempts = attempts + 1, last_error = ?, next_attempt_at = NULL "
            "WHERE id = ?",
            (reason, outbox_id),
        )


def schedule_retry(store: Store, outbox_id: int, attempts: int, reason: str, next_attempt_at: str) -> None:
    with store.atomic() as conn:
        conn.execute(
            "UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (attempts, reason, next_attempt_at, outbox_id),
        )


# -- reads ------------------------------------------------------------------------------------------------------


def pending_counts(store: Store) -> dict[str, Any]:
    """pending, retrying, given_up and oldest_pending_at over the whole outbox (/healthz)."""
    counts = store.query_one(
        """SELECT
             sum(sent_at IS NULL AND given_up = 0 AND superseded = 0) AS pending,
             sum(sent_at IS NULL AND given_up = 0 AND superseded = 0 AND attempts > 0) AS retrying,
             sum(given_up) AS given_up,
             min(CASE WHEN sent_at IS NULL AND given_up = 0 AND superseded = 0 THEN created_at END) AS oldest_pending_at
           FROM outbox"""
    )
    return counts or {}


def unresolved_given_up(store: Store, limit: int = 5) -> list[dict[str, Any]]:
    """Given-up rows that no later row of their key has made good (sent), newest first."""
    return store.query(
        """SELECT o.commit_sha AS commit_sha, o.context AS context, o.last_error AS last_error FROM outbox o
           WHERE o.given_up = 1 AND NOT EXISTS (
             SELECT 1 FROM outbox n WHERE n.commit_sha = o.commit_sha AND n.context = o.context
               AND COALESCE(n.source, '') = COALESCE(o.source, '') AND n.id > o.id AND n.sent_at IS NOT NULL)
           ORDER BY o.id DESC LIMIT ?""",
        (limit,),
    )


def outbox_rows(store: Store, commit_prefix: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The newest rows (of commits starting with `commit_prefix` when given), newest first."""
    where, params = (None, ()) if not commit_prefix else ("commit_sha LIKE ?", (commit_prefix + "%",))
    return store.rows_where(
        "outbox",
        where,
        params,
        select="id, source, commit_sha, context, state, description, target_url, created_at, sent_at, attempts, "
        "next_attempt_at, last_error, given_up, superseded",
        order_by="id DESC",
        limit=max(1, int(limit)),
    )


def outbox_page(
    store: Store, commit_prefix: str | None = None, before: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Outbox rows (of commits starting with `commit_prefix`), newest first, with an id below `before`."""
    where, params = ["1 = 1"], []
    if commit_prefix:
        # a prefix of hex digits: substr, not LIKE (no wildcard in what the caller sends can widen it)
        where.append("substr(commit_sha, 1, ?) = ?")
        params += [len(commit_prefix), commit_prefix]
    if before:
        where.append("id < ?")
        params.append(int(before))
    return store.query(
        f"""SELECT id, source, commit_sha, context, state, description, target_url, created_at, sent_at, attempts,
                   next_attempt_at, last_error, given_up, superseded FROM outbox WHERE {" AND ".join(where)}
            ORDER BY id DESC LIMIT ?""",
        (*params, int(limit)),
    )
