"""Airbyte Cloud `cloud.jobs.Sync`: a sync job through the Airbyte API (api.airbyte.com/v1).

The API (reference.airbyte.com, "Airbyte API"): `POST /v1/jobs` with `{"connectionId": …, "jobType": "sync"}`
creates the job and answers it (`JobResponse`: jobId, status, jobType, startTime, connectionId, lastUpdatedAt,
duration, bytesSynced, rowsSynced); `GET /v1/jobs/{jobId}` reads it again. Its status is `pending`, `running`,
`incomplete`, `failed`, `succeeded` or `cancelled`; Kestra stops waiting at any of the last four. Auth: a Bearer
`token`, else an application's `clientId`/`clientSecret` exchanged at `tokenURL` for one, else HTTP Basic.
Errors are problem details (`{"type", "title", "status", "detail"}`).

Kestra's task has no property for the API's address (its SDK always calls api.airbyte.com); gitsync reads it from
the `GITSYNC_AIRBYTE_CLOUD_URL` environment variable of the gitsync process when set (a proxy, a test server).
Kestra's task also succeeds with the job's status in its outputs whatever it is; gitsync fails the task when the
job ends other than `succeeded`, with the same `job` output kept, so a failed sync does not pass unnoticed.
"""

from __future__ import annotations

import base64
import os
from typing import Any, ClassVar
from urllib.parse import quote

from plugins.airbyte.connections import airbyte_reason
from plugins.saas.api import JsonApi, first_text
from plugins.saas.polling import flag, seconds, wait_until
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn, DynDuration

API_URL = "https://api.airbyte.com"
TOKEN_URL = "https://api.airbyte.com/v1/applications/token"
URL_VARIABLE = "GITSYNC_AIRBYTE_CLOUD_URL"
ENDED = ("incomplete", "failed", "cancelled", "succeeded")
JOB_KEYS = ("jobId", "startTime", "lastUpdatedAt", "jobType", "status", "duration", "bytesSynced", "rowsSynced")


class Sync(Task):
    """Start a sync job of an Airbyte Cloud connection and, with `wait` (the default), wait for it to succeed."""

    type_name: ClassVar[str] = "io.kestra.plugin.airbyte.cloud.jobs.Sync"

    connectionId: str
    """The connection to sync (its UUID)."""
    token: str | None = None
    """An Airbyte API access token (Bearer); a secret. Used before client credentials and basic auth."""
    clientId: str | None = None
    """An Airbyte application's client id, with `clientSecret` exchanged at `tokenURL` for a token."""
    clientSecret: str | None = None
    """The application's client secret; a secret."""
    tokenURL: str = TOKEN_URL
    """Where client credentials are exchanged for an access token."""
    username: str | None = None
    """HTTP Basic auth user, used when neither a token nor client credentials are given."""
    password: str | None = None
    """HTTP Basic auth password; a secret."""
    wait: Dyn[bool] = True
    """Wait for the job to end; false returns the created job at once."""
    maxDuration: DynDuration | None = None
    """How long to wait for the job at most (PT60M by default)."""
    pollFrequency: DynDuration | None = None
    """How often to read the job while waiting (PT1S by default)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        api = self._api(ctx)
        created = api.call("POST", "/v1/jobs", {"connectionId": self.connectionId, "jobType": "sync"})
        job = _job(created)
        job_id = job["jobId"]
        ctx.logger.info(f"Airbyte Cloud created sync job {job_id} ({job['status']}) for {self.connectionId}")
        if not flag(self.wait, "wait", True):
            return {"job": job}
        seen: list[str] = [str(job["status"])]

        def poll() -> dict[str, Any] | None:
            current = _job(api.call("GET", f"/v1/jobs/{quote(str(job_id), safe='')}"))
            if current["status"] != seen[-1]:
                seen.append(str(current["status"]))
                ctx.logger.info(f"Airbyte Cloud job {job_id}: {current['status']}")
            return current if current["status"] in ENDED else None

        every = seconds(self.pollFrequency, "pollFrequency", 1.0)
        limit = seconds(self.maxDuration, "maxDuration", 3600.0)
        final = wait_until(ctx, f"Airbyte Cloud job {job_id} to end", poll, every, limit)
        if final["status"] != "succeeded":
            raise TaskFailed(f"Airbyte Cloud job {job_id} ended {final['status']}", outputs={"job": final})
        ctx.logger.info(
            f"Airbyte Cloud job {job_id} succeeded: {final.get('rowsSynced')} rows, {final.get('bytesSynced')} bytes"
        )
        return {"job": final}

    def _api(self, ctx: RunContext) -> JsonApi:
        base = os.environ.get(URL_VARIABLE) or API_URL
        secrets = [s for s in (self.token, self.clientSecret, self.password) if s]
        if self.token:
            auth = f"Bearer {self.token}"
        elif self.clientId and self.clientSecret:
            auth = f"Bearer {self._access_token(ctx, secrets)}"
        elif self.username is not None and self.password is not None:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            secrets.append(basic)
            auth = f"Basic {basic}"
        else:
            raise TaskFailed(
                "Airbyte Cloud needs credentials: set token, or clientId and clientSecret, or username and password",
                permanent=True,
            )
        return JsonApi(
            "Airbyte Cloud", base, {"Authorization": auth}, secrets, airbyte_reason, cancelled=ctx.cancelled,
            on_retry=ctx.logger.warn,
        )  # fmt: skip

    def _access_token(self, ctx: RunContext, secrets: list[str]) -> str:
        """An access token for the client credentials, asked of `tokenURL` (the whole URL)."""
        plain = JsonApi("Airbyte Cloud", self.tokenURL, {}, secrets, airbyte_reason, cancelled=ctx.cancelled)
        body = {"client_id": self.clientId, "client_secret": self.clientSecret, "grant-type": "client_credentials"}
        token = first_text(plain.call("POST", "", body), ("access_token",))
        if token is None:
            raise TaskFailed("Airbyte Cloud answered the token request without an access_token")
        secrets.append(token)
        return token


def _job(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "jobId" not in body or "status" not in body:
        raise TaskFailed(f"Airbyte Cloud answered without a job: {str(body)[:200]!r}")
    return {key: body.get(key) for key in JOB_KEYS}
