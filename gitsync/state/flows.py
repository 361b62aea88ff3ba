"""The `flows` table (the active revision of each flow) and `revisions` (its append-only history).

Writes take the connection of the caller's `store.atomic()` block: a sync's apply writes its flows,
revisions, triggers, sync row and status in one transaction. These writes are on the apply's hot path, so
they stay plain statements (sqlite-utils' per-call table introspection would cost more than they do).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitsync.state.database import Store, query_in


@dataclass(frozen=True)
class AppliedFlow:
    uid: str
    path: str
    blob: str
    revision: int


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


# -- reads ------------------------------------------------------------------------------------------------------


def applied_flows(store: Store, source: str, uids: list[str] | None = None) -> dict[str, AppliedFlow]:
    """The source's active flows (or only those of `uids`, read by key)."""
    if uids is None:
        rows = store.query("SELECT uid, path, blob, revision FROM flows WHERE source = ?", (source,))
    else:
        rows = query_in(
            store, "SELECT uid, path, blob, revision FROM flows WHERE source = ? AND uid IN ({ids})", uids, (source,)
        )
    return {r["uid"]: AppliedFlow(r["uid"], r["path"], r["blob"], r["revision"]) for r in rows}


def applied_uids(store: Store, source: str) -> list[str]:
    return [r["uid"] for r in store.query("SELECT uid FROM flows WHERE source = ?", (source,))]


def count_flows(store: Store, source: str) -> int:
    row = store.query_one("SELECT count(*) AS n FROM flows WHERE source = ?", (source,))
    return int(row["n"]) if row else 0


def flow_path(store: Store, source: str, uid: str) -> str | None:
    """The file that defines the source's active flow `uid`, or None."""
    row = store.query_one("SELECT path FROM flows WHERE source = ? AND uid = ?", (source, uid))
    return None if row is None else str(row["path"])


class UidPaths(Mapping[str, str]):
    """uid -> path of the source's active flows, read from the state one key at a time (never all of them)."""

    def __init__(self, store: Store, source: str) -> None:
        self.store = store
        self.source = source

    def __getitem__(self, uid: str) -> str:
        path = flow_path(self.store, self.source, uid)
        if path is None:
            raise KeyError(uid)
        return path

    def __iter__(self) -> Iterator[str]:
        return iter(applied_uids(self.store, self.source))

    def __len__(self) -> int:
        return count_flows(self.store, self.source)


def flows_owned_elsewhere(store: Store, source: str, uids: list[str]) -> dict[str, str]:
    """uid -> owning source, for uids another source already defines (ownership across sources)."""
    rows = query_in(store, "SELECT uid, source FROM flows WHERE source != ? AND uid IN ({ids})", uids, (source,))
    return {row["uid"]: row["source"] for row in rows}


def list_flows(store: Store) -> list[dict[str, Any]]:
    """Every active flow, by uid (CLI `gitsync flows`, HTTP /api/v1/flows)."""
    rows = store.rows_where(
        "flows", select='uid, namespace, id, revision, commit_sha AS "commit", path, disabled, source', order_by="uid"
    )
    for row in rows:
        row["disabled"] = bool(row["disabled"])
    return rows


def history(store: Store, uid: str) -> list[dict[str, Any]]:
    """Every revision of a flow, oldest first; a removal is a revision with `deleted` true."""
    rows = store.rows_where(
        "revisions",
        "uid = ?",
        (uid,),
        select='revision, commit_sha AS "commit", author, message, applied_at, path, deleted',
        order_by="revision",
    )
    for row in rows:
        row["deleted"] = bool(row["deleted"])
    return rows


def known_uids(store: Store) -> list[str]:
    """Every uid with a history (active or removed), sorted: what `gitsync history` can show."""
    return [r["uid"] for r in store.query("SELECT DISTINCT uid FROM revisions ORDER BY uid")]


# -- writes (inside the caller's transaction) -------------------------------------------------------------------


def next_revision(conn: sqlite3.Connection, uid: str) -> int:
    row = conn.execute("SELECT max(revision) FROM revisions WHERE uid = ?", (uid,)).fetchone()
    return int(row[0] or 0) + 1


def write_revision(conn: sqlite3.Connection, row: RevisionRow, applied_at: str) -> int:
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


def revise_for_namespace_files(
    conn: sqlite3.Connection,
    source: str,
    namespaces: Sequence[str],
    skip: Collection[str],
    commit: str,
    author: str,
    message: str,
    applied_at: str,
) -> list[str]:
    """A new revision at `commit`, the same file and text, of each active flow of the source in `namespaces` (not
    in `skip`: those the sync revises anyway): their executions then read the namespace files of `commit`.
    Returns their uids."""
    if not namespaces:
        return []
    marks = ", ".join("?" for _ in namespaces)
    rows = conn.execute(
        f"""SELECT f.uid, f.namespace, f.id, f.path, f.blob, f.disabled, r.text FROM flows f
            JOIN revisions r ON r.uid = f.uid AND r.revision = f.revision
            WHERE f.source = ? AND f.namespace IN ({marks}) ORDER BY f.uid""",
        (source, *namespaces),
    ).fetchall()
    revised: list[str] = []
    for row in rows:
        if row["uid"] in skip:
            continue
        write_revision(
            conn,
            RevisionRow(
                uid=row["uid"],
                namespace=row["namespace"],
                flow_id=row["id"],
                source=source,
                commit=commit,
                path=row["path"],
                blob=row["blob"],
                author=author,
                message=message,
                text=row["text"],
                disabled=bool(row["disabled"]),
            ),
            applied_at,
        )
        revised.append(row["uid"])
    return revised


def delete_flow(conn: sqlite3.Connection, uid: str, commit: str, author: str, message: str, applied_at: str) -> None:
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


# -- reads for the API and the web UI ---------------------------------------------------------------------------

_FLOW_COLUMNS = (
    'f.uid, f.namespace, f.id, f.revision, f.commit_sha AS "commit", f.path, f.disabled, f.source, '
    "r.author, r.message, r.applied_at"
)


def namespaces(store: Store) -> list[dict[str, Any]]:
    """Each namespace that has an active flow, with its count of flows and of disabled ones, by name."""
    return store.query(
        """SELECT namespace AS name, count(*) AS flows, sum(disabled) AS disabled FROM flows
           GROUP BY namespace ORDER BY namespace"""
    )


def flows_page(
    store: Store,
    *,
    namespace: str | None = None,
    text: str | None = None,
    source: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Active flows by uid after the uid `after`: of `namespace` and its children, whose uid contains `text`, of
    `source`. At most `limit` rows."""
    where, params = ["1 = 1"], []
    if namespace:
        # the namespace and its children: 'ns' itself or 'ns.' followed by anything (no LIKE: `_` is a wildcard)
        where.append("(f.namespace = ? OR substr(f.namespace, 1, ?) = ?)")
        params += [namespace, len(namespace) + 1, namespace + "."]
    if text:
        where.append("instr(lower(f.uid), ?) > 0")
        params.append(text.lower())
    if source:
        where.append("f.source = ?")
        params.append(source)
    if after:
        where.append("f.uid > ?")
        params.append(after)
    rows = store.query(
        f"""SELECT {_FLOW_COLUMNS} FROM flows f LEFT JOIN revisions r ON r.uid = f.uid AND r.revision = f.revision
            WHERE {" AND ".join(where)} ORDER BY f.uid LIMIT ?""",
        (*params, int(limit)),
    )
    for row in rows:
        row["disabled"] = bool(row["disabled"])
    return rows


def flow_row(store: Store, uid: str) -> dict[str, Any] | None:
    """The active flow `uid` with its revision's author, message and time; None when it is not active."""
    row = store.query_one(
        f"""SELECT {_FLOW_COLUMNS} FROM flows f LEFT JOIN revisions r ON r.uid = f.uid AND r.revision = f.revision
            WHERE f.uid = ?""",
        (uid,),
    )
    if row is not None:
        row["disabled"] = bool(row["disabled"])
    return row


def revision_row(store: Store, uid: str, revision: int) -> dict[str, Any] | None:
    """One revision of a flow with its YAML text (None for a removal, or a revision recorded without it)."""
    row = store.query_one(
        """SELECT uid, revision, source, commit_sha AS "commit", path, author, message, applied_at, deleted, text
           FROM revisions WHERE uid = ? AND revision = ?""",
        (uid, int(revision)),
    )
    if row is not None:
        row["deleted"] = bool(row["deleted"])
    return row
