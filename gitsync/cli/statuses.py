"""`gitsync statuses [--commit SHA] [--format text|json]`: what was posted, what is pending, what was given up and why.

JSON: a list of objects (newest first) holding `commit`, `context`, `state`, `description`, `sent_at`, `attempts`,
`last_error` (DESIGN.md), and `id`, `source`, `target_url`, `created_at`, `next_attempt_at`, `given_up`,
`superseded` and `outcome` (`sent | pending | retrying | given_up | superseded | unsent`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gitsync.errors import GitSyncError
from gitsync.state import outbox
from gitsync.state.database import Store

COLUMNS = ["commit", "context", "state", "outcome", "attempts", "sent_at", "description", "last_error"]


def run_statuses(args: argparse.Namespace) -> int:
    from gitsync.cli.state_commands import _print, _read

    try:
        rows = _read(args, lambda store: list_statuses(store, args.commit, args.limit))
    except GitSyncError as exc:
        print(f"gitsync statuses: {exc}", file=sys.stderr)
        return 2
    return _print(args, rows, COLUMNS)


def list_statuses(store: Store, commit: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    prefix = commit.strip().lower() if commit else None
    return [_status(row) for row in outbox.outbox_rows(store, prefix, limit)]


def _status(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source": row["source"],
        "commit": row["commit_sha"],
        "context": row["context"],
        "state": row["state"],
        "description": row["description"],
        "target_url": row["target_url"],
        "created_at": row["created_at"],
        "sent_at": row["sent_at"],
        "attempts": row["attempts"],
        "next_attempt_at": row["next_attempt_at"],
        "last_error": row["last_error"],
        "given_up": bool(row["given_up"]),
        "superseded": bool(row["superseded"]),
        "outcome": outbox.outcome(row),
    }
