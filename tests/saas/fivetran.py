"""Fivetran's REST API v1 for connector syncs, played from its published documentation (fivetran.com/docs/rest-api).

- Auth: HTTP Basic, the API key as user and the API secret as password ("Authorization: Basic base64(key:secret)");
  anything else is 401 `{"code": "AuthFailed", "message": …}`.
- `GET /v1/connectors/{connector_id}` ("Retrieve Connector Details"): `{"code": "Success", "data": {id, group_id,
  service, schema, paused, succeeded_at, failed_at, sync_frequency, schedule_type, status: {setup_state,
  sync_state, update_state, is_historical_sync, tasks, warnings}}}`; an unknown id is 404
  `{"code": "NotFound_Connector", "message": "Connector with id '…' doesn't exist"}`.
- `POST /v1/connectors/{connector_id}/sync` ("Sync Connector Data"), body empty or `{"force": boolean}`: 200
  `{"code": "Success", "message": "Sync has been successfully triggered for connector with id '…'"}`. `force: true`
  stops a sync in progress; without it a connector already syncing keeps its sync.
- The newer `/v1/connections/…` names of the same endpoints are answered too.
- `sync_state` is `scheduled`, `syncing`, `paused` or `rescheduled`; a sync's end moves `succeeded_at` or
  `failed_at` (ISO-8601, UTC), and a later success does not clear an old `failed_at`.

A test scripts a connector: `add("c1", polls=2, outcome="succeeded")` makes each sync it starts answer `syncing`
for 2 reads, then end with that outcome (`failed` adds a task alert with the reason).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from saas.jobs_base import Answer, Provider, Request

PATH = re.compile(r"^/v1/(?:connectors|connections)/(?P<id>[^/]+)(?P<sync>/sync)?/?$")
EPOCH = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@dataclass
class Connector:
    id: str
    polls: int
    outcome: str
    reason: str = "Cannot connect to the source database: password authentication failed"
    succeeded_at: datetime | None = None
    failed_at: datetime | None = None
    syncing: int | None = None
    """Reads left before the running sync ends; None when no sync runs."""
    syncs: list[bool] = field(default_factory=list)
    """The `force` of each sync asked for."""
    alerts: list[dict[str, str]] = field(default_factory=list)


class FakeFivetran(Provider):
    name = "fivetran"

    def __init__(self, api_key: str, api_secret: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_secret = api_secret
        self.connectors: dict[str, Connector] = {}
        self.clock = EPOCH

    def reset(self) -> None:
        super().reset()
        self.connectors.clear()
        self.clock = EPOCH

    def add(self, connector_id: str, polls: int = 2, outcome: str = "succeeded", **kw: Any) -> Connector:
        connector = Connector(connector_id, polls, outcome, **kw)
        # an earlier sync ended: the task must wait for a newer end, not take this one
        connector.succeeded_at = self._tick()
        self.connectors[connector_id] = connector
        return connector

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def error(self, status: int, message: str) -> Any:
        code = {401: "AuthFailed", 404: "NotFound_Connector", 429: "TooManyRequests"}.get(status, "InvalidInput")
        return {"code": code, "message": message}

    def route(self, request: Request) -> Answer:
        expected = "Basic " + base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        if request.headers.get("authorization") != expected:
            raise self.refuse(401, "Missing or incorrect API key/secret", violation=False)
        match = PATH.match(request.path)
        if not match:
            raise self.refuse(404, f"no such endpoint {request.path}")
        connector = self.connectors.get(match["id"])
        if connector is None:
            raise self.refuse(404, f"Connector with id '{match['id']}' doesn't exist", violation=False)
        if match["sync"]:
            if request.method != "POST":
                raise self.refuse(405, f"{request.method} is not allowed on .../sync")
            return self._sync(connector, request)
        if request.method != "GET":
            raise self.refuse(405, f"{request.method} is not allowed on a connector")
        return Answer(200, {"code": "Success", "data": self._details(connector)})

    def _sync(self, connector: Connector, request: Request) -> Answer:
        force = False
        if request.raw:
            body = self.json_body(request, {"force": bool}, set())
            force = bool(body.get("force"))
        connector.syncs.append(force)
        if connector.syncing is None or force:
            connector.syncing = connector.polls
            connector.alerts = []
        message = f"Sync has been successfully triggered for connector with id '{connector.id}'"
        return Answer(200, {"code": "Success", "message": message})

    def _details(self, connector: Connector) -> dict[str, Any]:
        state = "scheduled"
        if connector.syncing is not None:
            if connector.syncing > 0:
                connector.syncing -= 1
                state = "syncing"
            else:
                connector.syncing = None
                if connector.outcome == "succeeded":
                    connector.succeeded_at = self._tick()
                else:
                    connector.failed_at = self._tick()
                    connector.alerts = [{"code": "sync_failed", "message": connector.reason}]
        return {
            "id": connector.id,
            "group_id": "projected_sickle",
            "service": "postgres",
            "schema": "pg_main",
            "paused": False,
            "succeeded_at": _iso(connector.succeeded_at),
            "failed_at": _iso(connector.failed_at),
            "sync_frequency": 360,
            "schedule_type": "manual",
            "status": {
                "setup_state": "connected",
                "sync_state": state,
                "update_state": "on_schedule",
                "is_historical_sync": False,
                "tasks": list(connector.alerts),
                "warnings": [],
            },
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
