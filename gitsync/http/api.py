"""The read routes of /api/v1 (namespaces, flows, revisions, syncs, triggers, executions, logs, statuses, workers),
trigger pause and resume, live logs over server-sent events, and the OpenAPI document of every route.

Each route is an `openapi.Operation` with its handler: the handler validates the query with the operation's model
(`gitsync.http.queries`), builds the operation's response model (`gitsync.views`) on a worker thread, and answers
it as JSON; a refusal is problem details (RFC 9457). Reads are open on loopback and need the token otherwise;
pause and resume need it always.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gitsync import __version__
from gitsync.http import queries as q
from gitsync.http.openapi import Operation, document
from gitsync.http.problems import problem
from gitsync.state.execution_pages import ExecutionFilter
from gitsync.views import dashboard, executions, flows, statuses, syncs, triggers
from gitsync.views.context import ViewContext
from gitsync.views.errors import NotFound
from gitsync.views.models import (
    Dashboard,
    Execution,
    ExecutionDetail,
    Flow,
    FlowDiff,
    FlowSource,
    FlowSummary,
    LogLine,
    Namespace,
    Page,
    Revision,
    Source,
    Status,
    Sync,
    SyncSummary,
    Trigger,
    TriggerAction,
    Worker,
)
from runner.states import State

Refuse = Callable[[Request], JSONResponse | None]
Build = Callable[[ViewContext, dict[str, str], Any], Any]

STREAM_POLL = 0.25
"""Seconds between two reads of a live log stream."""
STREAM_HEARTBEAT = 15.0
"""Seconds of silence after which a stream sends a comment, so proxies keep it open."""
STREAM_MAX_SECONDS = 6 * 3600.0
"""A stream ends after this long; the browser's EventSource reconnects from the last id it saw."""
MAX_STREAMS = 64
"""Live streams served at once; one more is answered 503 with Retry-After."""


@dataclass(frozen=True)
class Endpoint:
    operation: Operation
    build: Build


def _path(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in request.path_params.items()}


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value


def _filters(query: q.ExecutionQuery) -> ExecutionFilter:
    return ExecutionFilter(
        flow=query.flow,
        namespace=query.namespace,
        states=[s.value for s in query.state] if query.state else None,
        trigger_kinds=list(query.trigger_kind) if query.trigger_kind else None,
        since=q.iso(query.since),
        until=q.iso(query.until),
    )


def _read_endpoints() -> list[Endpoint]:
    ns = {"namespace": "the flow's namespace", "flow_id": "the flow's id"}
    e = {"execution_id": "the execution's id"}
    return [
        Endpoint(
            Operation("GET", "/api/v1/dashboard", "the dashboard: sources, failing flows, next fires", "ui", Dashboard),
            lambda c, p, _: dashboard.dashboard(c),
        ),
        Endpoint(
            Operation("GET", "/api/v1/sources", "each source, its applied commit and last sync", "syncs", list[Source]),
            lambda c, p, _: syncs.source_list(c),
        ),
        Endpoint(
            Operation("GET", "/api/v1/namespaces", "namespaces with active flows", "flows", list[Namespace]),
            lambda c, p, _: flows.namespaces(c),
        ),
        Endpoint(
            Operation("GET", "/api/v1/flows", "active flows, by uid", "flows", Page[FlowSummary], query=q.FlowQuery),
            lambda c, p, a: flows.flows_page(
                c, namespace=a.namespace, q=a.q, source=a.source, after=a.cursor, limit=a.limit
            ),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/flows/{namespace}/{flow_id}", "a flow: inputs, triggers, revisions", "flows", Flow,
                path_params=ns,
            ),
            lambda c, p, _: flows.flow(c, p["namespace"], p["flow_id"]),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/flows/{namespace}/{flow_id}/source", "the flow's YAML at a revision's commit", "flows",
                FlowSource, query=q.SourceQuery, path_params=ns,
            ),
            lambda c, p, a: flows.source(c, p["namespace"], p["flow_id"], a.revision),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/flows/{namespace}/{flow_id}/revisions", "every revision of a flow, newest first",
                "flows", list[Revision], path_params=ns,
            ),
            lambda c, p, _: flows.revisions(c, p["namespace"], p["flow_id"]),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/flows/{namespace}/{flow_id}/diff", "the diff of the YAML between two revisions",
                "flows", FlowDiff, query=q.DiffQuery, path_params=ns,
            ),
            lambda c, p, a: flows.diff(c, p["namespace"], p["flow_id"], a.from_, a.to),
        ),
        Endpoint(
            Operation("GET", "/api/v1/syncs", "syncs, newest first", "syncs", Page[SyncSummary], query=q.SyncQuery),
            lambda c, p, a: syncs.syncs_page(c, a.source, a.cursor, a.limit),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/syncs/{sync_id}", "a sync with its plan and every error", "syncs", Sync,
                path_params={"sync_id": "the sync's number"},
            ),
            lambda c, p, _: syncs.sync(c, _number(p["sync_id"], "sync")),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/triggers", "triggers with their next fires", "triggers", Page[Trigger],
                query=q.TriggerQuery,
            ),
            lambda c, p, a: triggers.triggers_page(c, flow=a.flow, after=a.cursor, limit=a.limit),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/executions", "executions, newest first, with filters", "executions", Page[Execution],
                query=q.ExecutionQuery,
            ),
            lambda c, p, a: executions.executions_page(c, _filters(a), a.cursor, a.limit),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/executions/{execution_id}", "an execution with its task runs, outputs and labels",
                "executions", ExecutionDetail, path_params=e,
            ),
            lambda c, p, _: executions.execution(c, p["execution_id"]),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/executions/{execution_id}/logs", "an execution's log lines, oldest first, paged",
                "executions", Page[LogLine], query=q.LogQuery, path_params=e,
            ),
            lambda c, p, a: executions.logs(
                c, p["execution_id"], after=a.cursor, limit=a.limit, min_level=a.level, task_run_id=a.task_run_id,
                q=a.q,
            ),
        ),
        Endpoint(
            Operation(
                "GET", "/api/v1/statuses", "commit statuses and their outbox state, newest first", "statuses",
                Page[Status], query=q.StatusQuery,
            ),
            lambda c, p, a: statuses.statuses_page(c, a.commit, a.cursor, a.limit),
        ),
        Endpoint(
            Operation("GET", "/api/v1/workers", "the processes that run executions", "workers", list[Worker]),
            lambda c, p, _: statuses.workers(c),
        ),
    ]  # fmt: skip


def _number(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise NotFound(f"no {what} {text!r}: {what}s are numbered 1, 2, 3…")
    return int(text)


class ApiRoutes:
    """The handlers of the read routes, pause/resume and the log stream, over one `ViewContext`."""

    def __init__(
        self, ctx: ViewContext, refuse: Refuse, refuse_read: Refuse, on_triggers_changed: Callable[[], None]
    ) -> None:
        self.ctx = ctx
        self.refuse = refuse
        self.refuse_read = refuse_read
        self.on_triggers_changed = on_triggers_changed
        self.streams = 0

    def read(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        op = endpoint.operation

        async def handle(request: Request) -> Response:
            if (refusal := self.refuse_read(request)) is not None:
                return refusal
            try:
                query = q.parse(op.query, request.query_params, _multi(request)) if op.query else _no_query(request)
                result = await run_in_threadpool(endpoint.build, self.ctx, _path(request), query)
            except q.QueryError as exc:
                return problem(400, str(exc))
            except NotFound as exc:
                return problem(404, str(exc))
            return JSONResponse(_dump(result))

        return handle

    async def pause(self, request: Request) -> Response:
        return await self._set_paused(request, True)

    async def resume(self, request: Request) -> Response:
        return await self._set_paused(request, False)

    async def _set_paused(self, request: Request, paused: bool) -> Response:
        if (refusal := self.refuse(request)) is not None:
            return refusal
        p = _path(request)
        try:
            action = await run_in_threadpool(
                triggers.set_paused, self.ctx, p["namespace"], p["flow_id"], p["trigger_id"], paused
            )
        except NotFound as exc:
            return problem(404, str(exc))
        await run_in_threadpool(self.on_triggers_changed)
        return JSONResponse(_dump(action))

    async def stream(self, request: Request) -> Response:
        """The execution's log lines and state changes as server-sent events, until it ends."""
        if (refusal := self.refuse_read(request)) is not None:
            return refusal
        try:
            query = q.parse(q.LogStreamQuery, request.query_params, _multi(request))
        except q.QueryError as exc:
            return problem(400, str(exc))
        assert isinstance(query, q.LogStreamQuery)
        execution_id = request.path_params["execution_id"]
        resumed = request.headers.get("last-event-id", "")
        after = int(resumed) if resumed.isdigit() and len(resumed) < 19 else query.after
        try:
            detail = await run_in_threadpool(executions.execution_state, self.ctx, execution_id)
        except NotFound as exc:
            return problem(404, str(exc))
        if self.streams >= MAX_STREAMS:
            return problem(503, f"{MAX_STREAMS} live log streams are open; try again shortly", {"Retry-After": "5"})
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            self._events(request, execution_id, after, detail), media_type="text/event-stream", headers=headers
        )

    async def _events(self, request: Request, execution_id: str, after: int, state: str) -> AsyncIterator[str]:
        self.streams += 1
        loop = asyncio.get_running_loop()
        started = last_sent = loop.time()
        try:
            yield "retry: 2000\n\n"
            yield _event("state", {"state": state})
            while loop.time() - started < STREAM_MAX_SECONDS:
                page = await run_in_threadpool(executions.tail, self.ctx, execution_id, after)
                for line in page.items:
                    after = line.id
                    yield _event("log", line.model_dump(mode="json"), line.id)
                now_state = await run_in_threadpool(executions.execution_state, self.ctx, execution_id)
                if now_state != state:
                    state = now_state
                    yield _event("state", {"state": state})
                if page.items:
                    last_sent = loop.time()
                if State(state).is_terminal and not page.next_cursor:
                    yield _event("end", {"state": state})
                    return
                if loop.time() - last_sent > STREAM_HEARTBEAT:
                    last_sent = loop.time()
                    yield ": still running\n\n"
                if await request.is_disconnected():
                    return
                if not page.next_cursor:
                    await asyncio.sleep(STREAM_POLL)
        finally:
            self.streams -= 1


def _event(name: str, data: Any, ident: int | None = None) -> str:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _multi(request: Request) -> dict[str, list[str]]:
    return {key: request.query_params.getlist(key) for key in request.query_params}


def _no_query(request: Request) -> Any:
    """None, when the request has no query; a route without parameters refuses any."""
    if request.query_params:
        raise q.QueryError(f"this route takes no parameters (got {', '.join(sorted(request.query_params))})")
    return None


def api_routes(
    ctx: ViewContext,
    refuse: Refuse,
    refuse_read: Refuse,
    on_triggers_changed: Callable[[], None],
    described: Iterable[Operation] = (),
) -> list[Route]:
    """The routes of this module, and /api/v1/openapi.json describing them with `described` (the other routes)."""
    api = ApiRoutes(ctx, refuse, refuse_read, on_triggers_changed)
    endpoints = _read_endpoints()
    trigger = {"namespace": "the flow's namespace", "flow_id": "the flow's id", "trigger_id": "the trigger's id"}
    base = "/api/v1/triggers/{namespace}/{flow_id}/{trigger_id}"
    extra = [
        Operation(
            "POST", f"{base}/pause", "pause a trigger: it fires no more until resumed (a sync keeps it paused)",
            "triggers", TriggerAction, access="write", path_params=trigger,
        ),
        Operation(
            "POST", f"{base}/resume", "resume a paused trigger", "triggers", TriggerAction, access="write",
            path_params=trigger,
        ),
        Operation(
            "GET", "/api/v1/executions/{execution_id}/logs/stream",
            "live log lines (event `log`), state changes (`state`) and the end (`end`) as server-sent events",
            "executions", None, query=q.LogStreamQuery, media_type="text/event-stream",
            path_params={"execution_id": "the execution's id"}, errors=(400, 404, 503),
        ),
    ]  # fmt: skip
    operations = [e.operation for e in endpoints] + extra + list(described)
    spec = document(sorted(operations, key=lambda o: (o.path, o.method)), __version__)
    body = json.dumps(spec, separators=(",", ":")).encode()

    async def openapi(request: Request) -> Response:
        return Response(body, media_type="application/json")

    routes = [Route("/api/v1/openapi.json", openapi, methods=["GET"])]
    routes += [Route(e.operation.path, api.read(e), methods=["GET"]) for e in endpoints]
    routes += [
        Route(f"{base}/pause", api.pause, methods=["POST"]),
        Route(f"{base}/resume", api.resume, methods=["POST"]),
        Route("/api/v1/executions/{execution_id}/logs/stream", api.stream, methods=["GET"]),
    ]
    return routes
