"""HTTP routes for executions: run a flow, kill, resume, replay, list, and Kestra's Webhook trigger URL.

    POST /api/v1/executions/webhook/{namespace}/{flowId}/{key}   a Webhook trigger (GET and PUT too)
    GET  /api/v1/executions                                      the executions (`flow`, `state`)
    GET  /api/v1/executions/{execution_id}                       one execution's row
    POST /api/v1/executions/{execution_id}/kill                  kill it (or cancel it before it starts)   202
    POST /api/v1/executions/{execution_id}/resume                resume a paused one (the body: its inputs) 202
    POST /api/v1/executions/{execution_id}/replay                replay an ended one from a task (`ReplayRequest`):
                                                                 202 {"id": the new execution, "replay_of", …}
    POST /api/v1/executions/{namespace}/{flow_id}                run a flow now (JSON inputs, or multipart) 201

`/api/v1/executions/webhook/{namespace}/{flowId}/{key}` needs no API token: the trigger's key is its secret,
compared in constant time before a byte of the body is read. Every other mutating route needs the API token, like
`/api/v1/sync`; the reads need it when the daemon listens off loopback. A run takes its inputs as a JSON object or,
as Kestra's API does, as multipart form data whose file parts are the files of FILE inputs. Bodies are streamed
with a limit and a deadline, JSON nests at most `MAX_JSON_DEPTH` levels (400 beyond), and credential headers
(Authorization, cookies, the hosts' signature and token headers) are neither recorded in `trigger.headers` nor
served back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from gitsync.executions.errors import NotEnded
from gitsync.executions.manager import RunError, RunManager
from gitsync.hosts.webhooks import NestingError, PayloadError, parse_json
from gitsync.http.guard import BodyError, read_body, safe_headers
from gitsync.http.problems import problem
from gitsync.state import executions as execution_rows
from runner.inputs import UploadedFile

log = logging.getLogger("gitsync.http")

MAX_BODY = 10 * 1024 * 1024
"""A Webhook trigger's body, and a run's or a resume's inputs."""
MAX_UPLOAD = 100 * 1024 * 1024
"""A run's multipart form data: its inputs and the files of its FILE inputs (held in memory while stored)."""
MAX_FORM_PARTS = 100
"""Fields, and files, in one multipart form."""
MAX_SMALL_BODY = 64 * 1024
"""A kill's body (ignored)."""
BODY_TIMEOUT = 30.0
Refuse = Callable[[Request], JSONResponse | None]


def execution_routes(
    runs: RunManager, refuse: Refuse, refuse_read: Refuse | None = None, body_timeout: float = BODY_TIMEOUT
) -> list[Route]:
    api = _Executions(runs, refuse, refuse_read or (lambda request: None), body_timeout)
    return [
        Route("/api/v1/executions/webhook/{namespace}/{flow_id}/{key}", api.webhook, methods=["GET", "POST", "PUT"]),
        Route("/api/v1/executions", api.list, methods=["GET"]),
        Route("/api/v1/executions/{execution_id}", api.get, methods=["GET"]),
        Route("/api/v1/executions/{execution_id}/kill", api.kill, methods=["POST"]),
        Route("/api/v1/executions/{execution_id}/resume", api.resume, methods=["POST"]),
        Route("/api/v1/executions/{execution_id}/replay", api.replay, methods=["POST"]),  # before {namespace}/{id}
        Route("/api/v1/executions/{namespace}/{flow_id}", api.create, methods=["POST"]),
    ]


def _error(status: int, message: str) -> JSONResponse:
    return problem(status, message)


class ReplayRequest(BaseModel):
    """The body of a replay: the task to run again from, and the inputs given again (the others keep the values
    the replayed execution had)."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(
        min_length=1, description="The task to run again from (its first task run, unless task_run_id)"
    )
    task_run_id: str | None = Field(
        default=None, description="The task run of that task to run again from (one value of a ForEach, …)"
    )
    inputs: dict[str, Any] = Field(default_factory=dict, description="Inputs given again, by id")


class _Executions:
    def __init__(self, runs: RunManager, refuse: Refuse, refuse_read: Refuse, body_timeout: float) -> None:
        self.runs = runs
        self.refuse = refuse
        self.refuse_read = refuse_read
        self.body_timeout = body_timeout

    async def webhook(self, request: Request) -> Response:
        p = request.path_params
        try:
            matches = await run_in_threadpool(self.runs.webhook_key_matches, p["namespace"], p["flow_id"], p["key"])
        except RunError as exc:  # the flow's key cannot be computed (a secret it reads is not set): its config's fault
            log.warning("webhook call refused: %s", exc)
            return _error(403, str(exc))
        if not matches:
            # before the body: a wrong key costs no read of what the caller sends
            return problem(404, "no flow with that webhook key", {"Connection": "close"})
        try:
            raw = await read_body(request, MAX_BODY, self.body_timeout)
            body = _body(raw)
        except BodyError as exc:
            return exc.response()
        except PayloadError as exc:
            return _error(400, f"the body: {exc}")
        trigger = {
            "body": body,
            "headers": safe_headers(request.headers.items()),
            "parameters": {k: request.query_params.getlist(k) for k in request.query_params},
        }
        try:
            execution_id = await run_in_threadpool(self.runs.webhook, p["namespace"], p["flow_id"], p["key"], trigger)
        except RunError as exc:
            return _error(422, str(exc))
        if execution_id is None:
            return _error(404, "no flow with that webhook key")
        if not execution_id:  # the trigger's conditions refuse this call: no execution (Kestra answers 204)
            return Response(status_code=204)
        return JSONResponse({"id": execution_id, "state": "CREATED"})

    async def create(self, request: Request) -> Response:
        refusal = self.refuse(request)
        if refusal is not None:
            return refusal
        multipart = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
        try:
            if multipart:
                inputs: Any = await read_form_inputs(request, MAX_UPLOAD, self.body_timeout)
            else:
                raw = await read_body(request, MAX_BODY, self.body_timeout)
                inputs = _body(raw) if raw else {}
        except BodyError as exc:
            return exc.response()
        except PayloadError as exc:
            return _error(400, f"the body: {exc}")
        if not isinstance(inputs, dict):
            return _error(400, "the body must be a JSON object of inputs, or multipart form data")
        uid = f"{request.path_params['namespace']}.{request.path_params['flow_id']}"
        try:
            execution_id = await run_in_threadpool(self.runs.create, uid, inputs, kind="api")
        except RunError as exc:
            return _error(422, str(exc))
        self.runs.start(execution_id)
        return JSONResponse({"id": execution_id, "state": "CREATED"}, status_code=201)

    async def list(self, request: Request) -> Response:
        if (refusal := self.refuse_read(request)) is not None:
            return refusal
        flow = request.query_params.get("flow")
        state = request.query_params.get("state")
        rows = await run_in_threadpool(execution_rows.list_executions, self.runs.store, flow=flow, state=state)
        for row in rows:
            row["trigger_vars"] = _without_credentials(row.get("trigger_vars"))
        return JSONResponse(json.loads(json.dumps(rows, default=str)))

    async def get(self, request: Request) -> Response:
        if (refusal := self.refuse_read(request)) is not None:
            return refusal
        execution_id = request.path_params["execution_id"]
        row = await run_in_threadpool(execution_rows.get_execution, self.runs.store, execution_id)
        if row is None:
            return _error(404, "no such execution")
        if isinstance(row.get("trigger_vars"), str):  # this row keeps its JSON columns encoded
            try:
                decoded = json.loads(row["trigger_vars"])
            except (ValueError, RecursionError):
                decoded = None
            if isinstance(decoded, dict):
                row["trigger_vars"] = json.dumps(_without_credentials(decoded))
        return JSONResponse(json.loads(json.dumps(row, default=str)))

    async def kill(self, request: Request) -> Response:
        return await self._act(request, MAX_SMALL_BODY, lambda ident, _: self.runs.request_kill(ident).value)

    async def resume(self, request: Request) -> Response:
        def act(ident: str, body: Any) -> str:
            self.runs.request_resume(ident, body if isinstance(body, dict) else {})
            return "RESUMING"

        return await self._act(request, MAX_BODY, act)

    async def replay(self, request: Request) -> Response:
        """A new execution replaying an ended one from a task (`ReplayRequest`), started here: 202 with its id;
        404 for an unknown execution, 409 while it has not ended, 422 when the replay is refused otherwise."""
        refusal = self.refuse(request)
        if refusal is not None:
            return refusal
        try:
            raw = await read_body(request, MAX_BODY, self.body_timeout)
            body = ReplayRequest.model_validate(_body(raw) if raw else {})
        except BodyError as exc:
            return exc.response()
        except PayloadError as exc:
            return _error(400, f"the body: {exc}")
        except ValidationError as exc:
            return _error(400, f"the body must be a JSON object like {_REPLAY_EXAMPLE}: {_problems(exc)}")
        ident = request.path_params["execution_id"]
        if await run_in_threadpool(execution_rows.execution_state, self.runs.store, ident) is None:
            return _error(404, f"no execution {ident!r}; GET /api/v1/executions lists them, newest first")
        try:
            replay_id = await run_in_threadpool(
                self.runs.replay, ident, body.task_id, task_run_id=body.task_run_id, inputs=body.inputs
            )
        except NotEnded as exc:
            return _error(409, str(exc))
        except RunError as exc:
            return _error(422, str(exc))
        self.runs.start(replay_id)
        return JSONResponse({"id": replay_id, "state": "CREATED", "replay_of": ident}, status_code=202)

    async def _act(self, request: Request, limit: int, action: Callable[[str, Any], str]) -> Response:
        refusal = self.refuse(request)
        if refusal is not None:
            return refusal
        try:
            raw = await read_body(request, limit, self.body_timeout)
            body = _body(raw) if raw else {}
        except BodyError as exc:
            return exc.response()
        except PayloadError as exc:
            return _error(400, f"the body: {exc}")
        ident = request.path_params["execution_id"]
        try:
            state = await run_in_threadpool(action, ident, body)
        except RunError as exc:
            return _error(409, str(exc))
        return JSONResponse({"id": ident, "state": state}, status_code=202)


async def read_form_inputs(request: Request, limit: int, timeout: float) -> dict[str, Any]:
    """The inputs of a multipart form (Kestra's way to run a flow with files): each text field is an input's value,
    each file part an `UploadedFile` for a FILE input. The body is refused (413) beyond `limit` bytes, before and
    while it streams, and (408) when it has not all arrived within `timeout` seconds; at most `MAX_FORM_PARTS`
    fields and as many files."""
    length = request.headers.get("content-length", "")
    if length.strip().isdigit() and int(length) > limit:
        raise BodyError(413, f"request body over {limit} bytes")
    size = 0

    async def receive() -> Message:
        nonlocal size
        message = await request.receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyError(413, f"request body over {limit} bytes")
        return message

    limited = Request(request.scope, receive)
    inputs: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            async with limited.form(max_files=MAX_FORM_PARTS, max_fields=MAX_FORM_PARTS) as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        inputs[name] = UploadedFile(filename=value.filename or name, data=await value.read())
                    else:
                        inputs[name] = value
    except TimeoutError:
        raise BodyError(408, f"the request body did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise BodyError(400, "the client went away before the body was sent") from None
    except (HTTPException, MultiPartException) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else exc.message
        raise BodyError(400, f"the multipart form data cannot be read: {detail}") from None
    return inputs


_REPLAY_EXAMPLE = '{"task_id": "load", "inputs": {"day": "2024-05-01"}}'


def _problems(exc: ValidationError) -> str:
    """What pydantic found wrong in a body, field by field, without the values sent."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'the body'}: {error['msg']}" for error in exc.errors()
    )


def _without_credentials(trigger_vars: Any) -> Any:
    """Stored trigger variables with credential headers dropped (rows recorded before they were filtered)."""
    if isinstance(trigger_vars, dict) and isinstance(trigger_vars.get("headers"), dict):
        return {**trigger_vars, "headers": safe_headers(trigger_vars["headers"].items())}
    return trigger_vars


def _body(raw: bytes) -> Any:
    """JSON when it parses (Kestra's `trigger.body`), else the text; JSON nested too deeply is a PayloadError."""
    text = raw.decode("utf-8", "replace")
    try:
        return parse_json(text)
    except NestingError:
        raise
    except PayloadError:
        return text
