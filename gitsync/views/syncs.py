"""Sources with their applied commit, the sync history, one sync with its plan and every error."""

from __future__ import annotations

from typing import Any

from gitsync.redact import redact_url
from gitsync.state import sources, syncs
from gitsync.views.context import ViewContext
from gitsync.views.errors import NotFound
from gitsync.views.models import Page, Source, Sync, SyncIssue, SyncSummary


def _summary(ctx: ViewContext, row: dict[str, Any]) -> dict[str, Any]:
    source = row["source"]
    return {
        "id": row["id"],
        "source": source,
        "commit": ctx.commit(source, row["commit"]) if row["commit"] else None,
        "previous_commit": ctx.commit(source, row["previous_commit"]) if row["previous_commit"] else None,
        "outcome": row["outcome"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "summary": row["summary"],
        "errors": len(row["errors"]),
        "warnings": len(row["warnings"]),
    }


def _issue(item: Any) -> SyncIssue:
    if not isinstance(item, dict):
        return SyncIssue(message=str(item))
    fields = {k: item.get(k) for k in ("file", "flow")}
    numbers = {k: item.get(k) if isinstance(item.get(k), int) else None for k in ("line", "column")}
    return SyncIssue(message=str(item.get("message", "")), **fields, **numbers)


def syncs_page(
    ctx: ViewContext, source: str | None = None, after: str | None = None, limit: int = 50
) -> Page[SyncSummary]:
    before = int(after) if after else None
    rows = syncs.syncs_page(ctx.store, source, before, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    return Page(
        items=[SyncSummary(**_summary(ctx, row)) for row in rows],
        next_cursor=str(rows[-1]["id"]) if more and rows else None,
    )


def sync(ctx: ViewContext, sync_id: int) -> Sync:
    row = syncs.get_sync(ctx.store, sync_id)
    if row is None:
        raise NotFound(f"no sync {sync_id}")
    return Sync(
        **_summary(ctx, row),
        error_list=[_issue(e) for e in row["errors"]],
        warning_list=[_issue(w) for w in row["warnings"]],
        plan=syncs.sync_plan(ctx.store, sync_id),
    )


def source_list(ctx: ViewContext) -> list[Source]:
    """Every source the state knows, with its applied commit and its last sync."""
    last = syncs.last_syncs(ctx.store)
    out = []
    for row in sources.all_sources(ctx.store):
        name = row["name"]
        out.append(
            Source(
                name=name,
                repo=row["repo"],
                branch=row["branch"],
                path=row["path"],
                namespace_prefix=row["namespace_prefix"] or None,
                applied=ctx.commit(name, row["applied_commit"]) if row["applied_commit"] else None,
                applied_at=row["applied_at"],
                last_sync=SyncSummary(**_summary(ctx, last[name])) if name in last else None,
            )
        )
    known = {source.name for source in out}
    for name, (repo, _provider) in ctx.repos.items():  # configured, not synced yet
        if name not in known:
            last_sync = SyncSummary(**_summary(ctx, last[name])) if name in last else None
            out.append(
                Source(
                    name=name,
                    repo=redact_url(repo),
                    branch=None,
                    path="",
                    namespace_prefix=None,
                    applied=None,
                    applied_at=None,
                    last_sync=last_sync,
                )
            )
    return sorted(out, key=lambda source: source.name)
