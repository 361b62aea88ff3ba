"""The dashboard: each source and its last sync, the failing flows, the next fires, executions over time."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from gitsync.state import execution_pages, flows
from gitsync.views.context import ViewContext
from gitsync.views.models import Dashboard, DayCounts, ExecutionBrief, FailingFlow
from gitsync.views.syncs import source_list
from gitsync.views.triggers import soonest

DAYS = 14


def dashboard(ctx: ViewContext, now: datetime | None = None) -> Dashboard:
    moment = now or datetime.now(UTC)
    first = (moment - timedelta(days=DAYS - 1)).date()
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for row in execution_pages.counts_by_day(ctx.store, first.isoformat()):
        counts[row["day"]][row["state"]] = row["n"]
    days = [(first + timedelta(days=i)).isoformat() for i in range(DAYS)]
    failing = [
        FailingFlow(
            flow=row["flow"],
            execution=ExecutionBrief(id=row["id"], state=row["state"], created_at=row["ended_at"] or ""),
            error=row["error"],
            revision=row["revision"],
            commit=ctx.commit(row["source"], row["commit"]),
        )
        for row in execution_pages.failing_flows(ctx.store)
    ]
    spaces = flows.namespaces(ctx.store)
    return Dashboard(
        sources=source_list(ctx),
        failing=failing,
        next_fires=soonest(ctx),
        executions_by_day=[DayCounts(day=day, states=counts.get(day, {})) for day in days],
        flows=sum(r["flows"] for r in spaces),
        namespaces=len(spaces),
    )
