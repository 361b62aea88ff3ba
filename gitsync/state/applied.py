"""Reads and writes of the applied state (sources, flows, revisions, triggers, syncs, outbox).

Every function takes the Store; writes are expected inside the caller's `store.atomic()` block when they
belong to a larger unit of work (a sync's apply writes flows, revisions, triggers, the sync row and the
outbox row in one transaction).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gitsync.state.database import Store, dumps, loads, now_iso


@dataclass(frozen=True)
class AppliedFlow:
    uid: str
    path: str
    blob: str
    revision: int


def applied_commit(store: Store, source: str) -> str | None:
    row = store.query_one("SELECT applied_commit FROM sources WHERE name = ?", (source,))
    return row["applied_commit"] if row else None


def applied_flows(store: Store, source: str, uids: list[str] | None = None) -> dict[str, AppliedFlow]:
    """The source's active flows (or only those of `uids`, read by key)."""
    if uids is None:
        rows = store.query("SELECT uid, path, blob, revision FROM flows WHERE source = ?", (source,))
    else:
        rows = []
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT uid, path, blob, revision FROM flows WHERE source = ? AND uid IN ({marks})"
            rows += store.query(sql, (source, *chunk))
    return {r["uid"]: AppliedFlow(r["uid"], r["path"], r["blob"], r["revision"]) for r in rows}


def applied_uids(store: Store, source: str) -> list[str]:
    return [r["uid"] for r in store.query("SELECT uid FROM flows WHERE source = ?", (source,))]


def count_flows(store: Store, source: str) -> int:
    row = store.query_one("SELECT count(*) AS n FROM flows WHERE source = ?", (source,))
    return int(row["n"]) if row else 0


class UidPaths(Mapping[str, str]):
    """uid -> path of the source's active flows, read from the state one key at a time (never all of them)."""

    def __init__(self, store: Store, source: str) -> None:
        self.store = store
        self.source = source

    def __getitem__(self, uid: str) -> str:
        row = self.store.query_one("SELECT path FROM flows WHERE source = ? AND uid = ?", (self.source, uid))
        if row is None:
            raise KeyError(uid)
        return str(row["path"])

    def __iter__(self) -> Iterator[str]:
        return iter(applied_uids(self.store, self.source))

    def __len__(self) -> int:
        return count_flows(self.store, self.source)


def flows_owned_elsewhere(store: Store, source: str, uids: list[str]) -> dict[str, str]:
    """uid -> owning source, for uids another source already defines (ownership across sources)."""
    out: dict[str, str] = {}
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in store.query(
            f"SELECT uid, source FROM flows WHERE uid IN ({marks}) AND source != ?", (*chunk, source)
        ):
            out[row["uid"]] = row["source"]
    return out


def upsert_source(conn: Any, name: str, repo: str, branch: str, path: str, prefix: str | None, commit: str) -> None:
    conn.execute(
        """INSERT INTO sources (name, repo, branch, path, namespace_prefix, applied_commit, applied_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET repo = excluded.repo, branch = excluded.branch, path = excluded.path,
             namespace_prefix = excluded.namespace_prefix, applied_commit = excluded.applied_commit,
             applied_at = excluded.applied_at""",
        (name, repo, branch, path, prefix or "", commit, now_iso()),
    )


def next_revision(conn: Any, uid: str) -> int:
    row = conn.execute("SELECT max(revision) FROM revisions WHERE uid = ?", (uid,)).fetchone()
    return int(row[0] or 0) + 1


@dataclass(frozen=True)
class RevisionRow:
    uid: str
    namespace: str
    flow_id: str
    source: str
    commit: str
    path: str
    blob: str
    author: str
    message: str
    text: str | None
    disabled: bool


def write_revision(conn: Any, row: RevisionRow, applied_at: str) -> int:
    """A new revision of a flow, made the active one."""
    revision = next_revision(conn, row.uid)
    conn.execute(
        """INSERT INTO revisions (uid, revision, source, commit_sha, path, blob, author, message, applied_at,
                                  deleted, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)""",
        (row.uid, revision, row.source, row.commit, row.path, row.blob, row.author, row.message, applied_at, row.text),
    )
    conn.execute(
        """INSERT INTO flows (uid, source, namespace, id, revision, commit_sha, path, blob, disabled)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(uid) DO UPDATE SET source = excluded.source, revision = excluded.revision,
             commit_sha = excluded.commit_sha, path = excluded.path, blob = excluded.blob,
             disabled = excluded.disabled""",
        (row.uid, row.source, row.namespace, row.flow_id, revision, row.commit, row.path, row.blob, int(row.disabled)),
    )
    return revision


def delete_flow(conn: Any, uid: str, commit: str, author: str, message: str, applied_at: str) -> None:
    """Removal is a revision too (deleted = 1), so history stays append-only."""
    flow = conn.execute("SELECT source, path, blob FROM flows WHERE uid = ?", (uid,)).fetchone()
    if flow is None:
        return
    conn.execute(
        """INSERT INTO revisions (uid, revision, source, commit_sha, path, blob, author, message, applied_at, deleted)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)""",
        (
            uid,
            next_revision(conn, uid),
            flow["source"],
            commit,
            flow["path"],
            flow["blob"],
            author,
            message,
            applied_at,
        ),
    )
    conn.execute("DELETE FROM flows WHERE uid = ?", (uid,))


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


def upsert_trigger(conn: Any, row: TriggerRow, registered_at: str) -> None:
    """Add or change a trigger; a changed trigger keeps its bookkeeping (last scheduled time)."""
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


def trigger_uids_of(conn: Any, flow_uids: list[str]) -> dict[str, str]:
    """trigger uid -> flow uid for the stored triggers of these flows."""
    out: dict[str, str] = {}
    for start in range(0, len(flow_uids), 500):
        chunk = flow_uids[start : start + 500]
        sql = f"SELECT uid, flow_uid FROM triggers WHERE flow_uid IN ({','.join('?' * len(chunk))})"
        out.update({row[0]: row[1] for row in conn.execute(sql, tuple(chunk))})
    return out


def delete_triggers(conn: Any, uids: list[str]) -> None:
    conn.executemany("DELETE FROM triggers WHERE uid = ?", [(uid,) for uid in uids])


def insert_sync(
    conn: Any,
    source: str,
    commit: str | None,
    previous: str | None,
    outcome: str,
    started_at: str,
    summary: str,
    errors: list[dict[str, Any]] | None = None,
    warnings: list[dict[str, Any]] | None = None,
) -> int:
    cursor = conn.execute(
        """INSERT INTO syncs (source, commit_sha, previous_commit, outcome, started_at, ended_at, summary, errors,
                              warnings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (source, commit, previous, outcome, started_at, now_iso(), summary, dumps(errors or []), dumps(warnings or [])),
    )
    return int(cursor.lastrowid)


def enqueue_status(
    conn: Any, source: str | None, commit: str, context: str, state: str, description: str, target_url: str | None
) -> None:
    """A commit status to post, in the same transaction as the state it reports (the sender drains it)."""
    conn.execute(
        """INSERT INTO outbox (source, commit_sha, context, state, description, target_url, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (source, commit, context, state, description, target_url, now_iso()),
    )


def list_flows(store: Store) -> list[dict[str, Any]]:
    rows = store.query(
        """SELECT uid, namespace, id, revision, commit_sha AS "commit", path, disabled, source
           FROM flows ORDER BY uid"""
    )
    for row in rows:
        row["disabled"] = bool(row["disabled"])
    return rows


def history(store: Store, uid: str) -> list[dict[str, Any]]:
    rows = store.query(
        """SELECT revision, commit_sha AS "commit", author, message, applied_at, path, deleted
           FROM revisions WHERE uid = ? ORDER BY revision""",
        (uid,),
    )
    for row in rows:
        row["deleted"] = bool(row["deleted"])
    return rows


def list_syncs(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    rows = store.query(
        """SELECT id, source, commit_sha AS "commit", previous_commit, outcome, started_at, ended_at, summary,
                  errors, warnings FROM syncs ORDER BY id DESC LIMIT ?""",
        (limit,),
    )
    for row in rows:
        row["errors"] = loads(row["errors"]) or []
        row["warnings"] = loads(row["warnings"]) or []
    return rows


def list_triggers(store: Store) -> list[dict[str, Any]]:
    rows = store.query(
        """SELECT t.uid, t.flow_uid, t.trigger_id, t.type, t.cron, t.with_seconds = 1 AS with_seconds, t.timezone,
                  t.disabled = 1 AS disabled, t.paused = 1 AS paused, t.next_fire, t.last_scheduled_at,
                  t.registered_at, t.spec, f.disabled = 1 AS flow_disabled, f.revision, f.commit_sha AS "commit"
           FROM triggers t JOIN flows f ON f.uid = t.flow_uid ORDER BY t.uid"""
    )
    for row in rows:
        row["spec"] = loads(row["spec"]) or {}
        for key in ("with_seconds", "disabled", "paused", "flow_disabled"):
            row[key] = bool(row[key])
    return rows
