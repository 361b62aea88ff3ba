"""Fivetran `connectors.Sync`: start a connector's sync over Fivetran's REST API and wait for it to end.

The API (fivetran.com/docs/rest-api): HTTP Basic auth with the API key and secret; `POST /v1/connectors/{id}/sync`
with `{"force": …}` starts a sync (force stops one in progress first); `GET /v1/connectors/{id}` answers the
connector, whose `succeeded_at` / `failed_at` move when a sync ends and whose `status.sync_state` says
`scheduled`, `syncing`, `paused` or `rescheduled`. A sync has ended when the later of the two times is newer than
before the sync was asked for; it failed when that is `failed_at`. Errors come as `{"code": …, "message": …}`.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from plugins.core._props import as_int
from plugins.core.http import HttpOptions
from plugins.saas.api import JsonApi, first_text
from plugins.saas.polling import flag, seconds, wait_until
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn, DynDuration

DEFAULT_URL = "https://api.fivetran.com"


def fivetran_reason(body: Any) -> str | None:
    said = first_text(body, ("message",))
    code = first_text(body, ("code",))
    if said and code:
        return f"{said} ({code})"
    return said or code


class Sync(Task):
    """Start a sync of a Fivetran connector and, with `wait` (the default), wait for it to succeed or fail."""

    type_name: ClassVar[str] = "io.kestra.plugin.fivetran.connectors.Sync"

    apiKey: str
    """The Fivetran API key (HTTP Basic auth user); a secret."""
    apiSecret: str
    """The Fivetran API secret (HTTP Basic auth password); a secret."""
    baseUrl: str = DEFAULT_URL
    """Fivetran's API address, for regional or private deployments."""
    options: HttpOptions | None = None
    """HTTP client options (timeouts, proxy)."""
    maxAttempts: Dyn[int] = 3
    """Attempts of each API call when Fivetran answers 429 (rate limited) or 502/503/504."""
    initialRetryDelay: DynDuration | None = None
    """The wait before the first repeated call (PT1S by default), doubled after each, at most 30 s."""
    connectorId: str
    """The connector to sync (its id, as the Fivetran dashboard or API shows it)."""
    force: Dyn[bool] = False
    """Stop a sync in progress and start again; without it a running sync is left to finish."""
    wait: Dyn[bool] = True
    """Wait for the sync to end, failing if it fails; false returns once the sync is asked for."""
    maxDuration: DynDuration | None = None
    """How long to wait at most (PT60M by default)."""
    pollFrequency: DynDuration | None = None
    """How often to ask Fivetran about the connector while waiting (PT5S by default)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        api = self._api(ctx)
        path = f"/v1/connectors/{quote(self.connectorId, safe='')}"
        every = seconds(self.pollFrequency, "pollFrequency", 5.0)
        before = _connector(api.call("GET", path))
        previous = _completed(before)
        started = api.call("POST", f"{path}/sync", {"force": flag(self.force, "force", False)})
        said = first_text(started, ("message",)) or "sync requested"
        ctx.logger.info(f"Fivetran connector '{self.connectorId}': {said}")
        if not flag(self.wait, "wait", True):
            return {}
        states: list[str] = []

        def poll() -> dict[str, Any] | None:
            connector = _connector(api.call("GET", path))
            state = str((connector.get("status") or {}).get("sync_state") or "")
            if state and (not states or states[-1] != state):
                states.append(state)
                ctx.logger.info(f"Fivetran connector '{self.connectorId}' sync state: {state}")
            done = _completed(connector)
            return connector if done is not None and (previous is None or done > previous) else None

        what = f"Fivetran connector '{self.connectorId}' to finish its sync"
        connector = wait_until(ctx, what, poll, every, seconds(self.maxDuration, "maxDuration", 3600.0))
        if _failed(connector):
            raise TaskFailed(self._failure(connector))
        ctx.logger.info(f"Fivetran connector '{self.connectorId}' synced at {connector.get('succeeded_at')}")
        return {}

    def _api(self, ctx: RunContext) -> JsonApi:
        basic = base64.b64encode(f"{self.apiKey}:{self.apiSecret}".encode()).decode("ascii")
        return JsonApi(
            provider="Fivetran",
            base_url=self.baseUrl,
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json;version=2"},
            secrets=[self.apiKey, self.apiSecret, basic],
            reason=fivetran_reason,
            options=self.options,
            attempts=as_int(self.maxAttempts, "maxAttempts"),
            first_delay=seconds(self.initialRetryDelay, "initialRetryDelay", 1.0),
            cancelled=ctx.cancelled,
            on_retry=ctx.logger.warn,
        )

    def _failure(self, connector: dict[str, Any]) -> str:
        status = connector.get("status") or {}
        alerts = [
            first_text(alert, ("message",)) or first_text(alert, ("code",)) or ""
            for alert in list(status.get("tasks") or []) + list(status.get("warnings") or [])
            if isinstance(alert, dict)
        ]
        said = "; ".join(a for a in alerts if a)
        return (
            f"Fivetran connector '{self.connectorId}' sync failed at {connector.get('failed_at')}"
            + (f": {said}" if said else "")
            + " (see the connector's logs in Fivetran)"
        )


def _connector(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise TaskFailed(f"Fivetran answered a connector without its data: {str(body)[:200]!r}")
    return data


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TaskFailed(f"Fivetran answered a time that cannot be read: {value!r}") from None


def _completed(connector: dict[str, Any]) -> datetime | None:
    """The end of the connector's last sync: the later of succeeded_at and failed_at."""
    ends = [t for t in (_time(connector.get("succeeded_at")), _time(connector.get("failed_at"))) if t is not None]
    return max(ends) if ends else None


def _failed(connector: dict[str, Any]) -> bool:
    """Fivetran never clears failed_at: the last sync failed only when no success came after it."""
    failed, succeeded = _time(connector.get("failed_at")), _time(connector.get("succeeded_at"))
    return failed is not None and (succeeded is None or succeeded <= failed)
