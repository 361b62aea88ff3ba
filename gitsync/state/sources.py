"""The `sources` table: each configured source and the commit whose flows are active."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from gitsync.state.database import Store, now_iso


def applied_commit(store: Store, source: str) -> str | None:
    """The commit whose flows are active for `source` (None before its first apply)."""
    row = store.query_one("SELECT applied_commit FROM sources WHERE name = ?", (source,))
    return row["applied_commit"] if row else None


def applied_commit_now(conn: sqlite3.Connection, source: str) -> str | None:
    """`applied_commit`, read inside the caller's transaction: what an apply compares and sets."""
    row = conn.execute("SELECT applied_commit FROM sources WHERE name = ?", (source,)).fetchone()
    return row["applied_commit"] if row else None


@dataclass(frozen=True)
class AppliedSettings:
    """The settings that shaped the plan of the applied commit, recorded with it."""

    path: str
    """The folder the flows were read from ('' for the repository root)."""
    namespace_prefix: str
    """The prefix the flows were checked against ('' for every namespace)."""


def applied_settings(store: Store, source: str) -> AppliedSettings | None:
    """The folder and namespace prefix of the source's applied commit (None before its first apply)."""
    row = store.query_one("SELECT path, namespace_prefix FROM sources WHERE name = ?", (source,))
    return AppliedSettings(row["path"] or "", row["namespace_prefix"] or "") if row else None


def upsert_source(
    conn: sqlite3.Connection, name: str, repo: str, branch: str, path: str, prefix: str | None, commit: str
) -> None:
    """Record the source's settings and its newly applied commit (inside the apply's transaction).

    Plain SQL rather than sqlite-utils' `upsert`: it is on every apply, where the library's table
    introspection would cost more than the statement itself.
    """
    conn.execute(
        """INSERT INTO sources (name, repo, branch, path, namespace_prefix, applied_commit, applied_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET repo = excluded.repo, branch = excluded.branch, path = excluded.path,
             namespace_prefix = excluded.namespace_prefix, applied_commit = excluded.applied_commit,
             applied_at = excluded.applied_at""",
        (name, repo, branch, path, prefix or "", commit, now_iso()),
    )


def all_sources(store: Store) -> list[dict[str, Any]]:
    """Every source the state has applied, by name (credentials never stored: `repo` is redacted)."""
    return store.query(
        "SELECT name, repo, branch, path, namespace_prefix, applied_commit, applied_at FROM sources ORDER BY name"
    )
