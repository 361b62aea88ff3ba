"""The sync history and one sync with its plan and errors, the triggers with pause and resume, and the commit
statuses with their outbox state: each built from the view the API answers with, its query validated by the
API's query model (`gitsync.http.queries`)."""

from __future__ import annotations

from gitsync.http import queries
from gitsync.views import statuses, syncs, triggers
from gitsync.views.context import ViewContext
from gitsync.web.render import View


def sync_list(ctx: ViewContext, query: queries.SyncQuery) -> View:
    page = syncs.syncs_page(ctx, query.source or None, query.cursor, query.limit)
    names = sorted({*ctx.repos, *(s.name for s in syncs.source_list(ctx))})
    return View("syncs.html", {"nav": "syncs", "page": page, "source": query.source or "", "sources": names})


def sync(ctx: ViewContext, sync_id: int) -> View:
    return View("sync.html", {"nav": "syncs", "s": syncs.sync(ctx, sync_id)})


def trigger_list(ctx: ViewContext, query: queries.TriggerQuery) -> View:
    page = triggers.triggers_page(ctx, flow=query.flow or None, after=query.cursor, limit=query.limit)
    return View("triggers.html", {"nav": "triggers", "page": page, "flow": query.flow or ""})


def status_list(ctx: ViewContext, query: queries.StatusQuery) -> View:
    page = statuses.statuses_page(ctx, query.commit or None, query.cursor, query.limit)
    return View("statuses.html", {"nav": "statuses", "page": page, "commit": query.commit or ""})
