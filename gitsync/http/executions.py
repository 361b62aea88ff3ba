"""HTTP routes for executions: run a flow, kill, resume, list, and Kestra's Webhook trigger URL.

`/api/v1/executions/webhook/{namespace}/{flowId}/{key}` needs no API token: the trigger's key is its secret
(compared in constant time). Every other mutating route needs the API token, like `/api/v1/sync`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gitsync.executions.manager import RunError, RunManager
from gitsync.state import executions as execution_rows

MAX_BODY = 10 * 1024 * 1024
Refuse = Callable[[Request], JSONResponse | None]


def execution_routes(runs: RunManager, refuse: Refuse) -> list[Route]:
    api = _Executions(runs, refuse)
    return [
        Route("/api/v1/executions/webhook/{namespace}/{flow_id}/{key}", api.webhook, methods=["GET", "POST", "PUT"]),
        Route("/api/v1/executions", api.list, methods=["GET"]),
        Route("/api/v1/executions/{execution_id}", api.get, methods=["GET"]),
        Route("/api/v1/executions/{execution_id}/kill", api.kill, methods=["POST"]),
        Route("/api/v1/executions/{execution_id}/resume", api.resume, methods=["POST"]),
        Route("/api/v1/executions/{namespace}/{flow_id}", api.create, methods=["POST"]),
    ]


class _Executions:
    def __init__(self, runs: RunManager, refuse: Refuse) -> None:
        self.runs = runs
        self.refuse = refuse

    async def webhook(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        trigger = {
            "body": _body(raw),
            "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            "parameters": {k: request.query_params.getlist(k) for k in request.query_params},
        }
        p = request.path_params
        try:
            execution_id = await run_in_threadpool(self.runs.webhook, p["namespace"], p["flow_id"], p["key"], trigger)
        except RunError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        if execution_id is None:
            return JSONResponse({"error": "no flow with that webhook key"}, status_code=404)
        return JSONResponse({"id": execution_id, "state": "CREATED"})

    async def create(self, request: Request) -> Response:
        refusal = self.refuse(request)
        if refusal is not None:
            return refusal
        raw = await request.body()
        inputs = _body(raw) if raw else {}
        if not isinstance(inputs, dict):
            return JSONResponse({"error": "the body must be a JSON object of inputs"}, status_code=400)
        uid = f"{request.path_params['namespace']}.{request.path_params['flow_id']}"
        try:
            execution_id = await run_in_threadpool(self.runs.create, uid, inputs)
        except RunError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        self.runs.start(execution_id)
        return JSONResponse({"id": execution_id, "state": "CREATED"}, status_code=201)

    async def list(self, request: Request) -> Response:
        flow = request.query_params.get("flow")
        state = request.query_params.get("state")
        rows = await run_in_threadpool(execution_rows.list_executions, self.runs.store, flow=flow, state=state)
        return JSONResponse(json.loads(json.dumps(rows, default=str)))

    async def get(self, request: Request) -> Response:
        execution_id = request.path_params["execution_id"]
        row = await run_in_threadpool(execution_rows.get_execution, self.runs.store, execution_id)
        if row is None:
            return JSONResponse({"error": "no such execution"}, status_code=404)
        return JSONResponse(json.loads(json.dumps(row, default=str)))

    async def kill(self, request: Request) -> Response:
        return await self._act(request, lambda ident, _: self.runs.request_kill(ident).value)

    async def resume(self, request: Request) -> Response:
        def act(ident: str, body: Any) -> str:
            self.runs.request_resume(ident, body if isinstance(body, dict) else {})
            return "RESUMING"

        return await self._act(request, act)

    async def _act(self, request: Request, action: Callable[[str, Any], str]) -> Response:
        refusal = self.refuse(request)
        if refusal is not None:
            return refusal
        raw = await request.body()
        ident = request.path_params["execution_id"]
        try:
            state = await run_in_threadpool(action, ident, _body(raw) if raw else {})
        except RunError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"id": ident, "state": state}, status_code=202)


def _body(raw: bytes) -> Any:
    """JSON when it parses (Kestra's `trigger.body`), else the text."""
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
