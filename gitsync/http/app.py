"""The HTTP API (Starlette under uvicorn): webhooks in, sync requests, health, metrics and read-only state.

    POST /webhooks/{github,gitea,gitlab}  a verified push to a tracked branch -> request_sync(source, reason), 202
    POST /api/v1/sync                      bearer token; optional {"source": name} -> request_sync, 202
    GET  /healthz                          health(): 200 when ok, 503 when degraded
    GET  /metrics                          Prometheus text format
    GET  /api/v1/...                       the reads (flows, syncs, triggers, executions, logs, statuses...) and
                                           /api/v1/openapi.json describing every route: `gitsync.http.api`

Every request's Host header must name this daemon (`guard.HostRule`: DNS rebinding). Bodies are streamed with a
size limit and a deadline (`guard.read_body`), and a webhook's signature is checked on the raw bytes before the
body is parsed.

The app never syncs inline and never writes a flow: a push only enqueues a sync of the commit git holds (invariant
7), and a pull request is handed to `on_pull_request`, which may plan it but never applies its head. Request bodies,
header values and secrets are never logged nor echoed.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gitsync.config import Settings, SourceConfig
from gitsync.hosts.webhooks import (
    HOSTS,
    Host,
    PayloadError,
    WebhookEvent,
    match_sources,
    payload_shape_error,
    tracked_branch,
    verify_any,
)
from gitsync.http.api import api_routes
from gitsync.http.guard import BodyError, HostCheck, HostRule, is_loopback, read_body
from gitsync.http.methods import MethodCheck
from gitsync.http.metrics import Metrics
from gitsync.http.openapi import Operation
from gitsync.http.problems import problem
from gitsync.redact import redact_url
from gitsync.state.database import Store
from gitsync.views.context import ViewContext
from gitsync.views.models import Accepted
from gitsync.web.routes import web_routes

log = logging.getLogger("gitsync.http")

MAX_WEBHOOK_BODY = 25 * 1024 * 1024
"""GitHub's own cap on a payload; GitLab's and Gitea's are lower."""
MAX_API_BODY = 64 * 1024
DELIVERY_MEMORY = 10_000

RequestSync = Callable[[str | None, str], None]
OnPullRequest = Callable[[str, WebhookEvent], None]
Outcome = tuple[str, JSONResponse]


class DeliveryLog:
    """The last `size` delivery ids per host: a redelivery (same id) is answered without acting twice."""

    def __init__(self, size: int = DELIVERY_MEMORY) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_add(self, host: str, delivery: str | None) -> bool:
        """True if this delivery was seen before; otherwise remember it. A delivery without an id is never a repeat."""
        if not delivery:
            return False
        key = (host, delivery)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return True
            self._seen[key] = None
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return False

    def forget(self, host: str, delivery: str | None) -> None:
        with self._lock:
            self._seen.pop((host, delivery or ""), None)


def _json(status: int, content: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status, headers=dict(headers or {}))


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return problem(status, message, headers)


def _repo_name(event: WebhookEvent) -> str:
    return event.repository.full_name or redact_url(next(iter(event.repository.urls), "(unnamed repository)"))


def _no_secret_reason(source: SourceConfig) -> str:
    if not source.webhook_secret_env:
        return f"source {source.name!r} has no webhook_secret_env, so webhooks cannot trigger it"
    return f"source {source.name!r}: environment variable {source.webhook_secret_env} is not set"


def _push_skip(source: SourceConfig, event: WebhookEvent) -> str | None:
    """Why a push does not concern `source`, or None when it does."""
    branch = event.branch
    if branch is None:
        return f"{event.ref or 'the ref'} is not a branch"
    tracked = tracked_branch(source, event)
    if tracked is not None and branch != tracked:
        return f"branch {branch} is not tracked"
    return None


def _pull_request_skip(source: SourceConfig, event: WebhookEvent) -> str | None:
    assert event.pull_request is not None
    tracked = tracked_branch(source, event)
    base = event.pull_request.base_ref
    if tracked is not None and base != tracked:
        return f"pull request into {base} is not tracked (the source follows {tracked})"
    return None


def is_degraded(report: Mapping[str, Any]) -> bool:
    """`status` other than "ok", a top-level `degraded`, or any source with `degraded` set."""
    if "status" in report:
        return report["status"] != "ok"
    if report.get("degraded"):
        return True
    sources = report.get("sources") or {}
    values = sources.values() if isinstance(sources, Mapping) else sources
    return any(isinstance(s, Mapping) and s.get("degraded") for s in values)


class _Api:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        request_sync: RequestSync,
        health: Callable[[], Mapping[str, Any]],
        metrics: Metrics,
        sources_for_event: Callable[[WebhookEvent], list[str]] | None,
        on_pull_request: OnPullRequest | None,
        max_body: int,
        delivery_memory: int,
    ) -> None:
        self.settings = settings
        self.store = store
        self.request_sync = request_sync
        self.health = health
        self.metrics = metrics
        self.sources_for_event = sources_for_event or (lambda e: [s.name for s in match_sources(settings, e)])
        self.on_pull_request = on_pull_request
        self.max_body = max_body
        self.deliveries = DeliveryLog(delivery_memory)

    # -- webhooks -------------------------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        name = request.path_params["host"]
        host = HOSTS.get(name)
        if host is None:
            return _error(404, f"no webhook endpoint for {name!r}: use /webhooks/github, /webhooks/gitea or gitlab")
        try:
            body = await read_body(request, self.max_body, self.settings.http.body_timeout)
        except BodyError as exc:
            self.metrics.webhook(host.name, "too_large" if exc.status == 413 else "invalid")
            return exc.response()
        outcome, response = self._handle(host, request.headers, body)
        self.metrics.webhook(host.name, outcome)
        return response

    def _handle(self, host: Host, headers: Mapping[str, str], body: bytes) -> Outcome:
        # only the headers and the first byte are looked at before the signature: nothing unsigned is parsed
        if not host.has_event(headers):
            return "invalid", _error(400, f"not a {host.label} delivery: no {host.event_header} header")
        shape = payload_shape_error(headers, body)
        if shape is not None:
            return "invalid", _error(400, f"{host.label} delivery: {shape}")
        secrets = {s.name: secret for s in self.settings.sources if (secret := s.webhook_secret())}
        checks = verify_any(host, headers, body, secrets)
        if not any(failure is None for failure in checks.values()):
            if not checks:
                reason = "no source has a webhook secret (webhook_secret_env), so webhooks cannot trigger a sync"
                log.warning("webhook %s refused: %s", host.name, reason)
                return "forbidden", _error(403, reason)
            failure = next(iter(checks.values())) or ""
            log.warning("webhook %s: no source's secret signed the delivery: %s", host.name, failure)
            return "unauthorized", _error(401, failure)
        try:
            event = host.parse(headers, body)
        except PayloadError as exc:
            return "invalid", _error(400, f"{host.label} delivery: {exc}")
        if event is None:
            return "invalid", _error(400, f"not a {host.label} delivery: no {host.event_header} header")
        wanted = set(self.sources_for_event(event))
        sources = [s for s in self.settings.sources if s.name in wanted]
        if not sources:
            log.info("webhook %s %r for %r: no source tracks it", host.name, event.event, _repo_name(event))
            return "ignored", _json(200, {"ignored": f"no source tracks repository {_repo_name(event)}"})
        verified, refusal = self._verified(host, event, sources, checks)
        if refusal is not None:
            return refusal
        if self.deliveries.check_and_add(host.name, event.delivery):
            log.info("webhook %s delivery %s: duplicate, ignored", host.name, event.delivery)
            return "duplicate", _json(200, {"duplicate": True, "delivery": event.delivery})
        try:
            return self._dispatch(event, verified)
        except Exception:
            self.deliveries.forget(host.name, event.delivery)  # let the host's redelivery try again
            log.exception("webhook %s delivery %s: the daemon could not take it", host.name, event.delivery)
            return "error", _error(503, "the event could not be queued; redeliver it later")

    def _verified(
        self, host: Host, event: WebhookEvent, sources: list[SourceConfig], checks: Mapping[str, str | None]
    ) -> tuple[list[SourceConfig], Outcome | None]:
        """The event's sources whose own secret signed it; a source without a secret is never triggered."""
        signed = [s for s in sources if s.name in checks]
        if not signed:
            reasons = "; ".join(_no_secret_reason(s) for s in sources)
            log.warning("webhook %s for %r refused: %s", host.name, _repo_name(event), reasons)
            return [], ("forbidden", _error(403, reasons))
        verified = [s for s in signed if checks[s.name] is None]
        if not verified:
            failure = next((checks[s.name] for s in signed), None) or "the signature does not match"
            log.warning("webhook %s delivery %r for %r: %s", host.name, event.delivery, _repo_name(event), failure)
            return [], ("unauthorized", _error(401, failure))
        return verified, None

    def _dispatch(self, event: WebhookEvent, sources: list[SourceConfig]) -> Outcome:
        names = [s.name for s in sources]
        if event.kind == "ping":
            return "ping", _json(200, {"ping": "ok", "sources": names})
        if event.kind == "push":
            return self._push(event, sources)
        if event.kind == "pull_request":
            return self._pull_request(event, sources)
        return "ignored", _json(200, {"ignored": f"{event.event} events are not handled"})

    def _push(self, event: WebhookEvent, sources: list[SourceConfig]) -> Outcome:
        skipped = {s.name: reason for s in sources if (reason := _push_skip(s, event))}
        accepted = [s.name for s in sources if s.name not in skipped]
        reason = f"webhook {event.delivery or '(no delivery id)'}"
        for name in accepted:
            self.request_sync(name, reason)
        log.info("webhook %s push %s to %s: sync %s", event.host, event.after, event.ref, accepted or "none")
        if not accepted:
            return "ignored", _json(200, {"ignored": "; ".join(dict.fromkeys(skipped.values()))})
        return "accepted", _json(202, {"accepted": accepted, "delivery": event.delivery, "skipped": skipped})

    def _pull_request(self, event: WebhookEvent, sources: list[SourceConfig]) -> Outcome:
        skipped = {s.name: reason for s in sources if (reason := _pull_request_skip(s, event))}
        accepted = [s.name for s in sources if s.name not in skipped]
        if not accepted:
            return "ignored", _json(200, {"ignored": "; ".join(dict.fromkeys(skipped.values()))})
        if self.on_pull_request is not None:
            for name in accepted:
                self.on_pull_request(name, event)
        assert event.pull_request is not None
        body = {"accepted": accepted, "pull_request": event.pull_request.number, "delivery": event.delivery}
        return "accepted", _json(202, body)

    # -- API ------------------------------------------------------------------------------------------------------

    def _refuse(self, request: Request) -> JSONResponse | None:
        """None when the request carries the API token; otherwise the refusal (403 when no token is configured)."""
        token = self.settings.http.api_token()
        if not token:
            return _error(403, f"set {self.settings.http.token_env} to enable the API")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not given.strip():
            return _error(401, "missing token: send Authorization: Bearer <token>", challenge)
        if not hmac.compare_digest(token.encode("utf-8"), given.strip().encode("utf-8", "replace")):
            return _error(401, "wrong API token", challenge)
        return None

    def _refuse_read(self, request: Request) -> JSONResponse | None:
        """Reads need the token too when the daemon listens off loopback (anyone on the network could ask)."""
        if is_loopback(self.settings.http.host):
            return None
        return self._refuse(request)

    async def sync(self, request: Request) -> Response:
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        try:
            body = await read_body(request, MAX_API_BODY, self.settings.http.body_timeout)
        except BodyError as exc:
            return exc.response()
        try:
            name = _requested_source(body)
        except ValueError as exc:
            return _error(400, str(exc))
        known = [s.name for s in self.settings.sources]
        if name is not None and name not in known:
            return _error(404, f"no source named {name!r} (known: {', '.join(known) or 'none'})")
        self.request_sync(name, "api")
        log.info("API: sync requested for %s", name or "every source")
        return _json(202, {"accepted": [name] if name else known})

    async def healthz(self, request: Request) -> Response:
        try:
            report = dict(await run_in_threadpool(self.health))
        except Exception as exc:
            log.exception("health check failed")
            report = {"status": "degraded", "error": f"health check failed: {type(exc).__name__}"}
        return _json(503 if is_degraded(report) else 200, report)

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=Metrics.content_type)


class SyncRequest(BaseModel):
    """The body of POST /api/v1/sync: the source to sync; none (or an empty body) syncs every source."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(None, max_length=200)


def _requested_source(body: bytes) -> str | None:
    if not body.strip():
        return None
    try:
        return SyncRequest.model_validate_json(body).source or None
    except ValidationError:
        raise ValueError('the body must be {"source": "<name>"}, or empty to sync every source') from None


_HOSTS = {"host": "github, gitea (Gitea and Forgejo) or gitlab"}
OPERATIONS = [
    Operation(
        "POST", "/webhooks/{host}", "a git host's push, pull-request or ping delivery, signed with the source's secret",
        "webhooks", dict[str, Any], access="open", errors=(400, 401, 403, 404, 503), path_params=_HOSTS,
        body_schema={"application/json": {"schema": {"type": "object"}}},
    ),
    Operation(
        "POST", "/api/v1/sync", "sync a source (or every source) now", "syncs", Accepted, status=202, access="write",
        body=SyncRequest,
    ),
    Operation("GET", "/healthz", "the daemon's health: 200 when ok, 503 when degraded", "health", dict[str, Any],
              access="open", errors=(503,)),
    Operation("GET", "/metrics", "Prometheus metrics", "health", None, access="open", errors=(),
              media_type="text/plain"),
]  # fmt: skip


def build_app(
    settings: Settings,
    store: Store,
    *,
    request_sync: RequestSync,
    health: Callable[[], Mapping[str, Any]],
    metrics: Metrics,
    sources_for_event: Callable[[WebhookEvent], list[str]] | None = None,
    on_pull_request: OnPullRequest | None = None,
    max_body: int = MAX_WEBHOOK_BODY,
    delivery_memory: int = DELIVERY_MEMORY,
    runs: Any = None,
    on_triggers_changed: Callable[[], None] | None = None,
) -> Starlette:
    """The ASGI app. `request_sync(source or None for all, reason)` and `on_pull_request` must only enqueue;
    `on_triggers_changed` is called after a trigger is paused or resumed (the daemon reconciles its timer).

    `sources_for_event` overrides how an event finds its sources (default: `webhooks.match_sources`).
    """
    api = _Api(
        settings, store, request_sync, health, metrics, sources_for_event, on_pull_request, max_body, delivery_memory
    )
    routes = [
        Route("/webhooks/{host}", api.webhook, methods=["POST"]),
        Route("/api/v1/sync", api.sync, methods=["POST"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/metrics", api.metrics_text, methods=["GET"]),
    ]
    described = list(OPERATIONS)
    if runs is not None:  # the runner's routes (executions, Kestra's webhook trigger URL)
        from gitsync.http import executions

        routes += executions.execution_routes(runs, api._refuse, api._refuse_read, settings.http.body_timeout)
        described += executions.OPERATIONS
    ctx = ViewContext.of(settings, store)
    routes += api_routes(ctx, api._refuse, api._refuse_read, on_triggers_changed or (lambda: None), described)
    routes += web_routes(settings, ctx, runs)
    middleware = [
        Middleware(HostCheck, rule=HostRule.from_settings(settings.http)),
        Middleware(MethodCheck, routes=routes),
    ]
    return Starlette(routes=routes, middleware=middleware)
