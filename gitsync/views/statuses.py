"""Commit statuses in the outbox and what became of each; the processes that run executions."""

from __future__ import annotations

import time
from typing import Any

from gitsync.state import outbox, owners
from gitsync.views.context import ViewContext
from gitsync.views.models import Page, Status, Worker


def _outbox_state(row: dict[str, Any]) -> str:
    if row["sent_at"]:
        return "sent"
    if row["superseded"]:
        return "superseded"
    if row["given_up"]:
        return "given up"
    return "retrying" if row["attempts"] else "pending"


def statuses_page(
    ctx: ViewContext, commit: str | None = None, after: str | None = None, limit: int = 100
) -> Page[Status]:
    before = int(after) if after else None
    rows = outbox.outbox_page(ctx.store, commit, before, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    items = [
        Status(
            id=row["id"],
            source=row["source"],
            commit=ctx.commit(row["source"], row["commit_sha"]),
            context=row["context"],
            state=row["state"],
            description=row["description"],
            target_url=row["target_url"],
            created_at=row["created_at"],
            sent_at=row["sent_at"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            outbox=_outbox_state(row),
        )
        for row in rows
    ]
    return Page(items=items, next_cursor=str(rows[-1]["id"]) if more and rows else None)


def workers(ctx: ViewContext, now: float | None = None) -> list[Worker]:
    """Every registered owner of executions, alive while its lease runs."""
    moment = time.time() if now is None else now
    out = []
    for row in owners.all_owners(ctx.store):
        renewed = float(row["renewed_at"])
        out.append(
            Worker(
                id=row["id"],
                kind=row["kind"],
                host=row["host"],
                pid=int(row["pid"]),
                label=row["label"],
                started_at=row["started_at"],
                renewed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(renewed)),
                alive=renewed + float(row["lease"]) >= moment,
            )
        )
    return out
