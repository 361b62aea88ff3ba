"""Airbyte's two APIs for sync jobs, played from their published documentation (reference.airbyte.com).

`FakeAirbyte`: the self-managed server's Configuration API.
- Auth: HTTP Basic (the instance's user and password) or `Authorization: Bearer <token>`; a token may be obtained
  with `POST /api/v1/applications/token` `{"client_id", "client_secret", "grant-type": "client_credentials"}` ->
  `{"access_token", "token_type": "Bearer", "expires_in"}`. Anything else is 401.
- `POST /api/v1/connections/sync` `{"connectionId": uuid}` -> `JobInfoRead` `{"job": {id, configType: "sync",
  configId, createdAt, updatedAt (epoch seconds), status}, "attempts": [{"attempt": {id, status, createdAt,
  updatedAt, endedAt, bytesSynced, recordsSynced, failureSummary}, "logs": {"logLines": [...]}}]}`. An unknown
  connection is 404, a connection whose job still runs is 409 "A sync is already running for: …".
- `POST /api/v1/jobs/get` `{"id": int64}` -> the same `JobInfoRead`; an unknown job is 404.
- Errors: `KnownExceptionInfo` `{"message", "exceptionClassName", "exceptionStack": []}`.
- Job status: pending, running, incomplete, failed, succeeded, cancelled; an `incomplete` job starts a new attempt.

`FakeAirbyteCloud`: the Airbyte API (api.airbyte.com/v1).
- Auth: `Authorization: Bearer <token>`; `POST /v1/applications/token` `{"client_id", "client_secret",
  "grant-type": "client_credentials"}` gives one.
- `POST /v1/jobs` `{"connectionId": string, "jobType": "sync" | "reset"}` -> `JobResponse` `{jobId, status,
  jobType, startTime, connectionId, lastUpdatedAt, duration, bytesSynced, rowsSynced}`; `GET /v1/jobs/{jobId}`.
- Errors: problem details `{"type", "title", "status", "detail"}`.

A test scripts a connection: `add("uuid", ["pending", "running", "succeeded"])`: each read of a job it starts
answers the next status (the last one stays).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from saas.jobs_base import Answer, Provider, Request

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CREATED = 1714550400
TOKEN_BODY: dict[str, type | tuple[type, ...]] = {"client_id": str, "client_secret": str, "grant-type": str}


@dataclass
class Job:
    id: int
    connection: str
    statuses: list[str]
    reads: int = 0
    reason: str = "Source process exited with non-zero exit code 1: could not connect to the source"

    @property
    def status(self) -> str:
        return self.statuses[min(self.reads, len(self.statuses) - 1)]


@dataclass
class _Jobs:
    scripts: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)
    next_id: int = 100

    def start(self, connection: str) -> Job:
        self.next_id += 1
        job = Job(self.next_id, connection, list(self.scripts[connection]))
        self.jobs[job.id] = job
        return job


class FakeAirbyte(Provider):
    name = "airbyte"

    def __init__(self, username: str, password: str, client_id: str, client_secret: str) -> None:
        super().__init__()
        self.basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.client = (client_id, client_secret)
        self.tokens: set[str] = set()
        self.state = _Jobs()

    def reset(self) -> None:
        super().reset()
        self.tokens.clear()
        self.state = _Jobs()

    def add(self, connection: str, statuses: list[str]) -> None:
        self.state.scripts[connection] = statuses

    def error(self, status: int, message: str) -> Any:
        names = {404: "ConfigNotFoundException", 409: "ValueConflictKnownException", 401: "AuthenticationException"}
        name = names.get(status, "BadObjectSchemaKnownException")
        return {
            "message": message,
            "exceptionClassName": f"io.airbyte.commons.server.errors.{name}",
            "exceptionStack": [],
        }

    def route(self, request: Request) -> Answer:
        path = request.path.rstrip("/")
        if request.method != "POST":
            raise self.refuse(405, f"{request.method} {path}: the Configuration API takes POST")
        if path == "/api/v1/applications/token":
            body = self.json_body(request, TOKEN_BODY, set(TOKEN_BODY))
            if (body["client_id"], body["client_secret"]) != self.client or body["grant-type"] != "client_credentials":
                raise self.refuse(401, "Invalid client credentials", violation=False)
            token = f"access-{len(self.tokens) + 1}-{body['client_id']}"
            self.tokens.add(token)
            return Answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 180})
        auth = request.headers.get("authorization", "")
        if auth != self.basic and auth.removeprefix("Bearer ") not in self.tokens:
            raise self.refuse(401, "Unauthorized: invalid credentials", violation=False)
        if path == "/api/v1/connections/sync":
            body = self.json_body(request, {"connectionId": str}, {"connectionId"})
            return self._sync(body["connectionId"])
        if path == "/api/v1/jobs/get":
            body = self.json_body(request, {"id": int}, {"id"})
            job = self.state.jobs.get(body["id"])
            if job is None:
                raise self.refuse(404, f"Could not find job with id: {body['id']}", violation=False)
            job.reads += 1
            return Answer(200, self._info(job))
        raise self.refuse(404, f"no such endpoint {path}")

    def _sync(self, connection: str) -> Answer:
        if not UUID.match(connection):
            raise self.refuse(422, f"connectionId must be a UUID, got {connection!r}")
        if connection not in self.state.scripts:
            raise self.refuse(404, f"Could not find configuration for STANDARD_SYNC: {connection}.", violation=False)
        running = [j for j in self.state.jobs.values() if j.connection == connection and j.status not in _ENDED]
        if running:
            raise self.refuse(409, f"A sync is already running for: {connection}", violation=False)
        return Answer(200, self._info(self.state.start(connection)))

    def _info(self, job: Job) -> dict[str, Any]:
        status = job.status
        done = job.statuses[: min(job.reads, len(job.statuses) - 1) + 1]
        count = 1 + done.count("incomplete")
        attempts = []
        for n in range(count):
            last = n == count - 1
            state = "failed" if not last or status in ("failed", "incomplete") else "succeeded"
            if last and status in ("pending", "running"):
                state = "running"
            failure = {"failures": [{"failureOrigin": "source", "failureType": "system_error",
                                     "externalMessage": job.reason, "timestamp": CREATED}]}  # fmt: skip
            attempts.append({
                "attempt": {
                    "id": n, "status": state, "createdAt": CREATED, "updatedAt": CREATED + job.reads,
                    "bytesSynced": 2048 if state == "succeeded" else 0,
                    "recordsSynced": 12 if state == "succeeded" else 0,
                    **({"failureSummary": failure} if state == "failed" else {}),
                },
                "logs": {"logLines": [f"attempt {n} INFO[main] replication read {i}" for i in range(job.reads + 1)]},
            })  # fmt: skip
        return {
            "job": {"id": job.id, "configType": "sync", "configId": job.connection, "createdAt": CREATED,
                    "updatedAt": CREATED + job.reads, "status": status},
            "attempts": attempts,
        }  # fmt: skip


_ENDED = ("failed", "succeeded", "cancelled")


class FakeAirbyteCloud(Provider):
    name = "airbyte-cloud"

    def __init__(self, token: str, client_id: str, client_secret: str) -> None:
        super().__init__()
        self.token = token
        self.client = (client_id, client_secret)
        self.tokens: set[str] = {token}
        self.state = _Jobs()

    def reset(self) -> None:
        super().reset()
        self.tokens = {self.token}
        self.state = _Jobs()

    def add(self, connection: str, statuses: list[str]) -> None:
        self.state.scripts[connection] = statuses

    def error(self, status: int, message: str) -> Any:
        titles = {401: "unauthorized", 404: "resource-not-found", 409: "state-conflict", 422: "invalid-input"}
        title = titles.get(status, "bad-request")
        return {"type": f"https://reference.airbyte.com/reference/errors#{title}", "title": title, "status": status,
                "detail": message}  # fmt: skip

    def route(self, request: Request) -> Answer:
        if request.path == "/v1/applications/token" and request.method == "POST":
            body = self.json_body(request, TOKEN_BODY, {"client_id", "client_secret"})
            if (body["client_id"], body["client_secret"]) != self.client:
                raise self.refuse(401, "Invalid client credentials", violation=False)
            token = f"cloud-access-{len(self.tokens)}"
            self.tokens.add(token)
            return Answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 180})
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            raise self.refuse(401, "The request is missing a valid access token", violation=False)
        if request.path == "/v1/jobs" and request.method == "POST":
            body = self.json_body(request, {"connectionId": str, "jobType": str}, {"connectionId", "jobType"})
            if body["jobType"] not in ("sync", "reset"):
                raise self.refuse(422, f"jobType must be sync or reset, got {body['jobType']!r}")
            if body["connectionId"] not in self.state.scripts:
                raise self.refuse(404, f"Could not find a connection with id: {body['connectionId']}", violation=False)
            return Answer(200, self._job(self.state.start(body["connectionId"])))
        match = re.match(r"^/v1/jobs/(\d+)$", request.path)
        if match and request.method == "GET":
            job = self.state.jobs.get(int(match[1]))
            if job is None:
                raise self.refuse(404, f"Could not find a job with id: {match[1]}", violation=False)
            job.reads += 1
            return Answer(200, self._job(job))
        raise self.refuse(404, f"no such endpoint {request.method} {request.path}")

    def _job(self, job: Job) -> dict[str, Any]:
        ended = job.status in ("succeeded", "failed", "cancelled", "incomplete")
        return {
            "jobId": job.id, "status": job.status, "jobType": "sync", "startTime": "2024-05-01T08:00:00Z",
            "connectionId": job.connection, "lastUpdatedAt": f"2024-05-01T08:0{min(job.reads, 9)}:00Z",
            "duration": f"PT{job.reads}M" if ended else None,
            "bytesSynced": 2048 if job.status == "succeeded" else 0,
            "rowsSynced": 12 if job.status == "succeeded" else 0,
        }  # fmt: skip
