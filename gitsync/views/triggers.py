"""Triggers with their next fire times, paged; pausing and resuming one."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from gitsync.state import triggers
from gitsync.views.context import ViewContext
from gitsync.views.errors import NotFound
from gitsync.views.models import Page, Trigger, TriggerAction
from runner.cron import CronError, parse_cron, parse_timezone

NEXT_FIRES = 5


def next_fires(row: dict[str, Any], now: datetime | None = None, count: int = NEXT_FIRES) -> list[str]:
    """The next `count` fire times of an active Schedule trigger, from the one the scheduler decided next."""
    if not row.get("cron") or row.get("paused") or row.get("disabled") or row.get("flow_disabled"):
        return []
    try:
        cron = parse_cron(row["cron"], bool(row.get("with_seconds")))
        zone = parse_timezone(row.get("timezone") or "UTC")
    except (CronError, ValueError):
        return []
    start = now or datetime.now(UTC)
    first = row.get("next_fire")
    fires: list[datetime] = []
    if first:
        with contextlib.suppress(ValueError):
            fires.append(datetime.fromisoformat(first))
    after = fires[0] if fires else start
    fires += cron.next_fires(after, count - len(fires), zone)
    return [f.astimezone(UTC).isoformat().replace("+00:00", "Z") for f in fires[:count]]


def trigger_view(row: dict[str, Any], now: datetime | None = None) -> Trigger:
    return Trigger(
        uid=row["uid"],
        flow=row["flow_uid"],
        trigger_id=row["trigger_id"],
        type=row["type"],
        cron=row["cron"],
        timezone=row["timezone"],
        disabled=row["disabled"],
        paused=row["paused"],
        flow_disabled=row["flow_disabled"],
        last_scheduled_at=row["last_scheduled_at"],
        next_fire=row["next_fire"],
        next_fires=next_fires(row, now),
    )


def triggers_page(
    ctx: ViewContext, *, flow: str | None = None, after: str | None = None, limit: int = 100
) -> Page[Trigger]:
    start = after or None
    rows = triggers.list_triggers(ctx.store, flow, after=start, limit=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    now = datetime.now(UTC)
    return Page(
        items=[trigger_view(r, now) for r in rows],
        next_cursor=str(rows[-1]["uid"]) if more and rows else None,
    )


def soonest(ctx: ViewContext, limit: int = 10) -> list[Trigger]:
    """The active triggers that fire next, soonest first."""
    now = datetime.now(UTC)
    return [trigger_view(r, now) for r in triggers.soonest(ctx.store, limit)]


def set_paused(ctx: ViewContext, namespace: str, flow_id: str, trigger_id: str, paused: bool) -> TriggerAction:
    uid = f"{namespace}.{flow_id}/{trigger_id}"
    if not triggers.set_paused(ctx.store, uid, paused):
        raise NotFound(f"no trigger {trigger_id!r} on flow {namespace}.{flow_id}")
    return TriggerAction(uid=uid, paused=paused)
