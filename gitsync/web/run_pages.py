"""The executions list with its filters, and an execution's page: its task runs as a Gantt timeline with states,
attempts and outputs, its graph coloured by state, its logs (live), and the commit and revision it ran."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from gitsync.http import queries
from gitsync.views import executions, flows
from gitsync.views.context import ViewContext
from gitsync.views.errors import NotFound
from gitsync.views.filters import execution_filter
from gitsync.views.models import ExecutionDetail
from gitsync.web.flow_pages import graph_svg
from gitsync.web.render import View
from gitsync.web.timeline import build_timeline
from runner.states import State

LOG_LINES = 1000
"""Log lines rendered with the page; the live stream (or the next page's link) brings the rest."""
FILTERS = ("flow", "namespace", "state", "trigger_kind", "since", "until")
TRIGGER_KINDS = ("manual", "api", "webhook", "schedule", "flow", "subflow", "retry", "replay", "poll")
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")


def _aware(value: str) -> str:
    """A `datetime-local` field's value (no zone) read as UTC; a value with a zone is kept."""
    text = value.strip()
    if text and "T" in text and not (text.endswith("Z") or "+" in text[10:] or "-" in text[10:]):
        return text + ("Z" if text.count(":") >= 2 else ":00Z")
    if len(text) == 10:  # a day
        return text + "T00:00:00Z"
    return text


def executions_list(ctx: ViewContext, params: Mapping[str, str], multi: Mapping[str, Sequence[str]]) -> View:
    form = {key: params.get(key, "") for key in FILTERS}
    states = [s for value in multi.get("state", []) for s in value.split(",") if s]
    kinds = [k for value in multi.get("trigger_kind", []) for k in value.split(",") if k]
    data = {k: v for k, v in params.items() if v and k in (*FILTERS, "cursor", "limit")}
    multi_data = {k: v for k, v in multi.items() if k in ("state", "trigger_kind")}
    for key in ("since", "until"):
        if data.get(key):
            data[key] = _aware(data[key])
    context: dict[str, Any] = {
        "nav": "executions",
        "form": form,
        "states": states,
        "kinds": kinds,
        "all_states": [s.value for s in State if s.value != "AHEAD"],
        "all_kinds": TRIGGER_KINDS,
        "page": None,
        "error": None,
    }
    try:
        query = queries.parse(queries.ExecutionQuery, data, multi_data)
    except queries.QueryError as exc:
        context["error"] = f"These filters cannot be used: {exc}"
        return View("executions.html", context, 400)
    assert isinstance(query, queries.ExecutionQuery)
    context["page"] = executions.executions_page(ctx, execution_filter(query), query.cursor, query.limit)
    context["params"] = {k: v for k, v in form.items() if v and k not in ("state", "trigger_kind")} | {
        "state": states,
        "trigger_kind": kinds,
        "limit": params.get("limit"),
    }
    return View("executions.html", context)


def _task_states(detail: ExecutionDetail) -> dict[str, str]:
    """Each task's state on the graph: its last run's (the runs are in the order they were written)."""
    return {run.task_id: run.state for run in detail.task_runs}


def _live(detail: ExecutionDetail, now: datetime) -> dict[str, Any]:
    """What the live fragment shows (re-rendered on each state change)."""
    timeline = build_timeline([run.model_dump() for run in detail.task_runs], now)
    runs = {run.id: run for run in detail.task_runs}
    first_row: set[str] = set()
    rows = []
    for row in timeline.rows:
        anchor = row.task_id not in first_row
        first_row.add(row.task_id)
        rows.append((row, runs[row.id], anchor))
    return {"timeline": timeline, "rows": rows, "active": State(detail.state).is_active}


def execution(ctx: ViewContext, execution_id: str, level: str | None, q: str | None, cursor: str | None) -> View:
    detail = executions.execution(ctx, execution_id)
    level = level.upper() if level and level.upper() in LEVELS else None
    logs = executions.logs(ctx, execution_id, after=cursor, limit=LOG_LINES, min_level=level, q=q or None)
    graph = None
    if detail.revision:
        try:
            source = flows.source(ctx, detail.namespace, detail.flow_id, detail.revision)
        except NotFound:
            source = None
        if source is not None and source.text:
            title = f"Task graph of {detail.flow}, revision {detail.revision}, with each task's state"
            graph = graph_svg(source.text, title, _task_states(detail), link_lines=False)
    last_id = logs.items[-1].id if logs.items else 0
    return View(
        "execution.html",
        {
            "nav": "executions",
            "e": detail,
            "graph": graph,
            "logs": logs,
            "last_log": last_id,
            "level": level or "",
            "q": q or "",
            "levels": LEVELS,
            "ended": State(detail.state).is_terminal,
            **_live(detail, datetime.now(UTC)),
        },
    )


def live(ctx: ViewContext, execution_id: str) -> View:
    detail = executions.execution(ctx, execution_id)
    return View("_execution_live.html", {"e": detail, **_live(detail, datetime.now(UTC))})
