"""Executions: pages with filters, one with its task runs, its log lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gitsync.http.guard import safe_headers
from gitsync.state import execution_pages
from gitsync.state import executions as execution_rows
from gitsync.views.context import ViewContext
from gitsync.views.errors import NotFound
from gitsync.views.models import Execution, ExecutionDetail, LogLine, Page, TaskRun


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)
    except ValueError:
        return None


def _fields(ctx: ViewContext, row: dict[str, Any]) -> dict[str, Any]:
    namespace, _, flow_id = row["flow"].rpartition(".")
    return {
        "id": row["id"],
        "flow": row["flow"],
        "namespace": namespace,
        "flow_id": flow_id,
        "revision": row["revision"],
        "commit": ctx.commit(row["source"], row["commit"]),
        "source": row["source"],
        "state": row["state"],
        "trigger_kind": row["trigger_kind"],
        "trigger": row["trigger"],
        "scheduled_at": row["scheduled_at"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "duration_s": _seconds(row["started_at"], row["ended_at"]),
        "labels": row["labels"] if isinstance(row["labels"], dict) else {},
        "error": row["error"],
        "attempt": row["attempt"],
        "original_id": row["original_id"],
        "parent_execution": row["parent_execution"],
    }


def executions_page(
    ctx: ViewContext, filters: execution_pages.ExecutionFilter, after: str | None = None, limit: int = 50
) -> Page[Execution]:
    before = after or None
    rows = execution_pages.executions_page(ctx.store, filters, before, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    return Page(
        items=[Execution(**_fields(ctx, row)) for row in rows],
        next_cursor=str(rows[-1]["id"]) if more and rows else None,
    )


def task_run(row: dict[str, Any]) -> TaskRun:
    return TaskRun(
        **{k: row[k] for k in ("id", "task_id", "task_type", "parent_id", "iteration", "attempt", "state")},
        value=None if row["value"] is None else str(row["value"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_s=_seconds(row["started_at"], row["ended_at"]),
        outputs=row["outputs"] if isinstance(row["outputs"], dict) else {"value": row["outputs"]},
        error=row["error"],
    )


def _without_credentials(trigger_vars: Any) -> dict[str, Any]:
    """Trigger variables with credential headers dropped (rows recorded before they were filtered)."""
    if not isinstance(trigger_vars, dict):
        return {}
    if isinstance(trigger_vars.get("headers"), dict):
        return {**trigger_vars, "headers": safe_headers(trigger_vars["headers"].items())}
    return trigger_vars


def execution(ctx: ViewContext, execution_id: str) -> ExecutionDetail:
    row = execution_pages.execution_detail(ctx.store, execution_id)
    if row is None:
        raise NotFound(f"no execution {execution_id}")
    return ExecutionDetail(
        **_fields(ctx, row),
        inputs=row["inputs"] if isinstance(row["inputs"], dict) else {},
        outputs=row["outputs"] if isinstance(row["outputs"], dict) else {},
        trigger_vars=_without_credentials(row["trigger_vars"]),
        task_runs=[task_run(r) for r in execution_pages.task_run_rows(ctx.store, execution_id)],
    )


def logs(
    ctx: ViewContext,
    execution_id: str,
    *,
    after: str | None = None,
    limit: int = 500,
    min_level: str | None = None,
    task_run_id: str | None = None,
    q: str | None = None,
) -> Page[LogLine]:
    """An execution's log lines, oldest first, a page at a time."""
    if execution_pages.execution_detail(ctx.store, execution_id) is None:
        raise NotFound(f"no execution {execution_id}")
    start = int(after) if after else 0
    rows = execution_pages.logs_page(
        ctx.store,
        execution_id,
        after=start,
        limit=limit + 1,
        min_level=min_level,
        task_run_id=task_run_id,
        text=q,
    )
    more, rows = len(rows) > limit, rows[:limit]
    return Page(
        items=[LogLine(**row) for row in rows],
        next_cursor=str(rows[-1]["id"]) if more and rows else None,
    )


def execution_state(ctx: ViewContext, execution_id: str) -> str:
    state = execution_rows.execution_state(ctx.store, execution_id)
    if state is None:
        raise NotFound(f"no execution {execution_id}")
    return state


def tail(ctx: ViewContext, execution_id: str, after: int, limit: int = 500) -> Page[LogLine]:
    """The log lines after the line `after` (a live stream's next read); `next_cursor` is set when more wait."""
    rows = execution_pages.logs_page(ctx.store, execution_id, after=after, limit=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    return Page(items=[LogLine(**row) for row in rows], next_cursor=str(rows[-1]["id"]) if more else None)
