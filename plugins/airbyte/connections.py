"""Airbyte (self-managed, its Configuration API) `connections.Sync` and `connections.CheckStatus`.

The API (reference.airbyte.com, "Airbyte Configuration API"): `POST {url}/api/v1/connections/sync` with
`{"connectionId": …}` starts a sync and answers its job (`JobInfoRead`: `job` {id, configType, configId, createdAt,
updatedAt, status} and its `attempts`, each with `logs.logLines`); `POST {url}/api/v1/jobs/get` with `{"id": …}`
reads it again. A job is `pending`, `running`, `incomplete` (an attempt failed, Airbyte tries again), `failed`,
`succeeded` or `cancelled`; the last three end it. A sync asked for while one runs is refused (409, "A sync is
already running"). Auth: HTTP Basic (`username`/`password`, as `abctl` installs set up), a Bearer `token`, or an
application's client credentials exchanged at `/api/v1/applications/token` for an access token.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from plugins.core.http import HttpOptions
from plugins.saas.api import JsonApi, first_text
from plugins.saas.polling import flag, seconds, wait_until
from plugins.values import Options
from runner.api import Logger, RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn, DynDuration

ENDED = ("failed", "cancelled", "succeeded")


def airbyte_reason(body: Any) -> str | None:
    return first_text(body, ("message",), ("detail",), ("title",), ("error",))


class ApplicationCredentials(Options):
    """An Airbyte application's client credentials, exchanged for an access token before the calls."""

    clientId: str
    clientSecret: str
    """A secret."""


class _Connection(Task):
    url: str
    """The Airbyte server's address (`http://localhost:8000`)."""
    username: str | None = None
    """HTTP Basic auth user; with `password`, wins over `token`."""
    password: str | None = None
    """HTTP Basic auth password; a secret."""
    token: str | None = None
    """A Bearer token; a secret."""
    applicationCredentials: ApplicationCredentials | None = None
    """Client credentials exchanged for an access token (instead of `token`)."""
    httpTimeout: DynDuration | None = None
    """Deprecated in Kestra, without effect: use `options`."""
    options: HttpOptions | None = None
    """HTTP client options (timeouts, proxy)."""
    maxDuration: DynDuration | None = None
    """How long to wait for the job at most (PT60M by default)."""
    pollFrequency: DynDuration | None = None
    """How often to read the job while waiting (PT1S by default)."""

    def _api(self, ctx: RunContext) -> JsonApi:
        secrets = [s for s in (self.password, self.token) if s]
        headers: dict[str, str] = {}
        token = self.token
        if self.applicationCredentials is not None:
            creds = self.applicationCredentials
            secrets.append(creds.clientSecret)
            plain = JsonApi("Airbyte", self.url, {}, secrets, airbyte_reason, self.options, cancelled=ctx.cancelled)
            body = {
                "client_id": creds.clientId,
                "client_secret": creds.clientSecret,
                "grant-type": "client_credentials",
            }
            answer = plain.call("POST", "/api/v1/applications/token", body)
            token = first_text(answer, ("access_token",))
            if token is None:
                raise TaskFailed("Airbyte answered the application token request without an access_token")
            secrets.append(token)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.username is not None and self.password is not None:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {basic}"
            secrets.append(basic)
        return JsonApi(
            "Airbyte", self.url, headers, secrets, airbyte_reason, self.options, cancelled=ctx.cancelled,
            on_retry=ctx.logger.warn,
        )  # fmt: skip

    def _wait(self, ctx: RunContext, api: JsonApi, job_id: int) -> dict[str, Any]:
        """The job once ended, its attempts' new log lines logged on the way; TaskFailed unless it succeeded."""
        logged: dict[int, int] = {}
        attempts = [1]

        def poll() -> dict[str, Any] | None:
            info = api.call("POST", "/api/v1/jobs/get", {"id": job_id})
            job = _job(info)
            runs = info.get("attempts") or []
            _log_lines(ctx.logger, runs, logged)
            if len(runs) > attempts[0]:
                attempts[0] = len(runs)
                ctx.logger.warn(f"Airbyte job {job_id}: an attempt failed, Airbyte started attempt {len(runs)}")
            return info if job.get("status") in ENDED else None

        every = seconds(self.pollFrequency, "pollFrequency", 1.0)
        limit = seconds(self.maxDuration, "maxDuration", 3600.0)
        info = wait_until(ctx, f"Airbyte job {job_id} to end", poll, every, limit)
        status = _job(info).get("status")
        runs = info.get("attempts") or []
        if status != "succeeded":
            reasons = _failures(runs)
            raise TaskFailed(
                f"Airbyte job {job_id} ended {status} after {len(runs)} attempt(s)"
                + (f": {'; '.join(reasons)}" if reasons else ""),
                outputs={"finalJobStatus": status},
            )
        ctx.logger.info(f"Airbyte job {job_id} succeeded after {len(runs)} attempt(s)")
        return info


class Sync(_Connection):
    """Start a sync of an Airbyte connection and, with `wait` (the default), wait for its job to succeed."""

    type_name: ClassVar[str] = "io.kestra.plugin.airbyte.connections.Sync"

    connectionId: str
    """The connection to sync (its UUID)."""
    wait: Dyn[bool] = True
    """Wait for the job to end, failing unless it succeeds; false returns the job id at once."""
    failOnActiveSync: Dyn[bool] = True
    """Fail when a sync of the connection already runs; false succeeds with `alreadyRunning: true`."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        api = self._api(ctx)
        try:
            info = api.call("POST", "/api/v1/connections/sync", {"connectionId": self.connectionId})
        except TaskFailed as exc:
            if "HTTP 409" not in exc.message and "already running" not in exc.message.lower():
                raise
            if flag(self.failOnActiveSync, "failOnActiveSync", True):
                raise TaskFailed(f"{exc.message} (set failOnActiveSync: false to let it run)") from None
            ctx.logger.warn(f"Airbyte connection {self.connectionId} is already syncing: {exc.message}")
            return {"jobId": None, "alreadyRunning": True}
        job_id = _job(info).get("id")
        if not isinstance(job_id, int):
            raise TaskFailed(f"Airbyte answered the sync without a job id: {str(info)[:200]!r}")
        ctx.logger.info(f"Airbyte started job {job_id} ({_job(info).get('status')}) for connection {self.connectionId}")
        if flag(self.wait, "wait", True):
            self._wait(ctx, api, job_id)
        return {"jobId": job_id, "alreadyRunning": False}


class CheckStatus(_Connection):
    """Wait for an Airbyte job to end, failing unless it succeeds."""

    type_name: ClassVar[str] = "io.kestra.plugin.airbyte.connections.CheckStatus"

    jobId: Dyn[int]
    """The job to wait for."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        try:
            job_id = int(str(self.jobId).strip())
        except ValueError:
            raise TaskFailed(f"jobId must be an Airbyte job number, got {self.jobId!r}", permanent=True) from None
        info = self._wait(ctx, self._api(ctx), job_id)
        return {"finalJobStatus": _job(info).get("status")}


def _job(info: Any) -> dict[str, Any]:
    job = info.get("job") if isinstance(info, dict) else None
    if not isinstance(job, dict):
        raise TaskFailed(f"Airbyte answered without a job: {str(info)[:200]!r}")
    return job


def _log_lines(logger: Logger, runs: list[Any], logged: dict[int, int]) -> None:
    """Log each attempt's lines not logged yet, at the level Airbyte printed (ERROR[, DEBUG[, TRACE[)."""
    for index, run in enumerate(runs):
        lines = ((run or {}).get("logs") or {}).get("logLines") or []
        for line in lines[logged.get(index, 0) :]:
            text = str(line)
            level = next((lv for lv in ("ERROR", "DEBUG", "TRACE") if f"{lv}[" in text), "INFO")
            logger.log(level, text)
        logged[index] = len(lines)


def _failures(runs: list[Any]) -> list[str]:
    found: list[str] = []
    for run in runs:
        summary = ((run or {}).get("attempt") or {}).get("failureSummary") or {}
        for failure in summary.get("failures") or []:
            text = first_text(failure, ("externalMessage",), ("internalMessage",))
            if text and text not in found:
                found.append(text)
    return found
