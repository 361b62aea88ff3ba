"""HTTP routes for executions: run a flow, kill, resume, and Kestra's Webhook trigger URL (the reads are in
`gitsync.http.api`; `OPERATIONS` describes these routes in its OpenAPI document).

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
import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from gitsync.executions.errors import UnknownFlow
from gitsync.executions.manager import RunError, RunManager
from gitsync.hosts.webhooks import NestingError, PayloadError, parse_json
from gitsync.http.guard import BodyError, read_body, safe_headers
from gitsync.http.openapi import Operation
from gitsync.http.problems import problem
from gitsync.views.models import ExecutionAction, ExecutionCreated
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
        Route("/api/v1/executions/{execution_id}/kill", api.kill, methods=["POST"]),
        Route("/api/v1/executions/{execution_id}/resume", api.resume, methods=["POST"]),
        Route("/api/v1/executions/{namespace}/{flow_id}", api.create, methods=["POST"]),
    ]


def _error(status: int, message: str) -> JSONResponse:
    return problem(status, message)


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
        except UnknownFlow as exc:
            return _error(404, str(exc))
        except RunError as exc:
            return _error(422, str(exc))
        self.runs.start(execution_id)
        return JSONResponse({"id": execution_id, "state": "CREATED"}, status_code=201)

    async def kill(self, request: Request) -> Response:
        return await self._act(request, MAX_SMALL_BODY, lambda ident, _: self.runs.request_kill(ident).value)

    async def resume(self, request: Request) -> Response:
        def act(ident: str, body: Any) -> str:
            self.runs.request_resume(ident, body if isinstance(body, dict) else {})
            return "RESUMING"

        return await self._act(request, MAX_BODY, act)

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


def _body(raw: bytes) -> Any:
    """JSON when it parses (Kestra's `trigger.body`), else the text; JSON nested too deeply is a PayloadError."""
    text = raw.decode("utf-8", "replace")
    try:
        return parse_json(text)
    except NestingError:
        raise
    except PayloadError:
        return text


_FLOW = {"namespace": "the flow's namespace", "flow_id": "the flow's id"}
_RUN_BODY = {
    "application/json": {"schema": {"type": "object", "description": "the inputs, by input id"}},
    "multipart/form-data": {
        "schema": {"type": "object", "description": "one field per input; a FILE input's file as a file part"}
    },
}
_WEBHOOK = "/api/v1/executions/webhook/{namespace}/{flow_id}/{key}"
OPERATIONS = [
    Operation(
        "POST", "/api/v1/executions/{namespace}/{flow_id}",
        "run a flow now, with its inputs (validated by type; FILE inputs as multipart parts)", "executions",
        ExecutionCreated, status=201, access="write", body_schema=_RUN_BODY, errors=(400, 404, 422), path_params=_FLOW,
    ),
    Operation(
        "POST", "/api/v1/executions/{execution_id}/kill", "kill an execution and its running tasks", "executions",
        ExecutionAction, status=202, access="write", errors=(409,), path_params={"execution_id": "the execution"},
    ),
    Operation(
        "POST", "/api/v1/executions/{execution_id}/resume", "resume a paused execution, with the Pause task's inputs",
        "executions", ExecutionAction, status=202, access="write", errors=(409,),
        body_schema={"application/json": {"schema": {"type": "object"}}},
        path_params={"execution_id": "the execution"},
    ),
    *(
        Operation(
            method, _WEBHOOK,
            "Kestra's Webhook trigger URL: the key in the path is the secret; the body becomes trigger.body",
            "executions", ExecutionCreated, access="key", errors=(400, 403, 404, 422),
            body_schema=None if method == "GET" else {"application/json": {"schema": {}}},
            path_params={**_FLOW, "key": "the trigger's key"},
        )
        for method in ("GET", "POST", "PUT")
    ),
]  # fmt: skip
