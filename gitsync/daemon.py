"""The service: sync (poll timer, local watcher, webhooks, API), schedule, serve HTTP. One process, one writer.

Syncs run one at a time on a single worker thread, fed by a queue that coalesces requests per source, so a
burst of pushes and webhooks costs one sync per source. Polls use jitter and back off exponentially while a
source fails. The scheduler is reconciled from SQLite after every apply.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitsync import __version__
from gitsync.config import Settings, SourceConfig
from gitsync.executions.manager import RunManager
from gitsync.http.metrics import Metrics
from gitsync.redact import redact_url
from gitsync.schedule.conditions import ScheduleConditions
from gitsync.schedule.timer import Scheduler
from gitsync.state import executions, flows, triggers
from gitsync.state.database import Store, now_iso
from gitsync.statuses.sender import OutboxSender
from gitsync.sync.pull_requests import PullRequestPlanner
from runner.registry import Registry

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from gitsync.sync.apply import SyncResult

log = logging.getLogger("gitsync.daemon")

MAX_BACKOFF_SECONDS = 600.0
JITTER = 0.1
HTTP_START_SECONDS = 5.0
"""How long `start` waits for HTTP to answer (`gitsync.http.server.serve`) before it starts syncing anyway."""


@dataclass
class SourceHealth:
    outcome: str | None = None
    commit: str | None = None
    last_sync_at: str | None = None
    last_error: str | None = None
    degraded: bool = False
    failures: int = 0
    next_poll: float = 0.0
    syncing: bool = False

    def after(self, result: SyncResult | None, poll_seconds: float) -> SourceHealth:
        """The health after a sync that gave `result` (None: it crashed)."""
        failed = result is None or result.outcome == "failed"
        failures = self.failures + 1 if failed else 0
        return SourceHealth(
            outcome=result.outcome if result else "failed",
            commit=result.commit if result is not None and result.outcome in ("applied", "unchanged") else self.commit,
            last_sync_at=now_iso(),
            last_error=(
                (result.summary if result else "internal error; see the logs")
                if failed
                else (result.errors[0] if result and result.errors else None)
            ),
            degraded=failed,
            failures=failures,
            next_poll=time.monotonic() + _poll_delay(poll_seconds, failures),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "syncing": self.syncing,
            "outcome": self.outcome,
            "applied_commit": self.commit,
            "last_sync_at": self.last_sync_at,
            "last_error": self.last_error,
            "degraded": self.degraded,
            "reason": self.last_error if self.degraded else None,
        }


@dataclass
class _Requests:
    """Pending sync requests, coalesced per source (None = every source)."""

    pending: dict[str, str] = field(default_factory=dict)
    condition: threading.Condition = field(default_factory=threading.Condition)


@dataclass
class DaemonParts:
    """What the composition root (`gitsync.compose.build_daemon`) builds for the daemon."""

    store: Store
    registry: Registry
    runs: RunManager
    statuses: OutboxSender
    pull_requests: PullRequestPlanner
    metrics: Metrics


class Daemon:
    """Runs the threads of the service over the parts it is given; it builds none of them (see gitsync.compose)."""

    def __init__(self, settings: Settings, parts: DaemonParts) -> None:
        self.settings = settings
        self.registry = parts.registry
        self.store = parts.store
        self.metrics = parts.metrics
        self.runs = parts.runs
        self.statuses = parts.statuses
        self.pull_requests = parts.pull_requests
        judge = ScheduleConditions(self.registry, self.runs.renderer.evaluate)
        self.scheduler = Scheduler(self.store, on_fire=self._on_fire, conditions=judge)
        self.app: Starlette | None = None
        """The HTTP app (`gitsync.compose.build_http_app`); served on `settings.http.listen` when set."""
        self.health: dict[str, SourceHealth] = {s.name: SourceHealth() for s in settings.sources}
        self._requests = _Requests()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self._socket: socket.socket | None = None
        self._fired: deque[str] = deque()
        self.synced = threading.Condition()
        """Notified after every sync (tests and the benchmark wait on it)."""

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Claim the HTTP port and the database first (`OwnerConflict`, nothing changed, when another process
        holds either), then resolve what stopped processes left and start every thread."""
        # Lock files a killed fetch left in the git caches are removed by the next fetch, under the cache's flock.
        if self.app is not None:
            from gitsync.http.server import bind

            self._socket = bind(self.settings.http)
        try:
            resolved = self.runs.open(start_pending=True)
        except BaseException:
            self._close_socket()
            raise
        if resolved:
            log.warning("resolved %d execution(s) left by processes that stopped", len(resolved))
        # HTTP answers first (/healthz says each source's first sync is pending), then the rest starts
        self._start_http()
        self.statuses.start()
        self.pull_requests.start()
        self.scheduler.start()
        started = self.runs.start_pending()
        if started:
            log.info("started %d execution(s) that were waiting", len(started))
        self._spawn("sync-worker", self._sync_worker)
        self._spawn("poll-timer", self._poll_timer)
        self._spawn("poll-triggers", self._poll_triggers)
        for source in self.settings.sources:
            local = _local_git_dir(source)
            if local is not None:
                self._spawn(f"watch-{source.name}", lambda s=source, d=local: self._watch(s, d))
            self.request_sync(source.name, "start")

    def run(self) -> None:
        """Start, then block until SIGINT/SIGTERM. The log says first where the state lives, what each source is,
        where HTTP listens and what to try next, and last why the service stopped."""
        stopped_by: list[str] = []

        def on_signal(signum: int, _frame: Any) -> None:
            stopped_by.append(_SIGNALS.get(signum, f"signal {signum}"))
            self._stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        for line in starting_lines(self.settings):
            log.info("%s", line)
        try:
            self.start()
        except BaseException:
            self.store.close()
            raise
        for line in running_lines(self.settings):
            log.info("%s", line)
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            why = stopped_by[0] if stopped_by else "an error, logged above"
            log.info("gitsync is stopping (%s)", why)
            self.stop()
            log.info("gitsync stopped (%s)", why)

    def stop(self) -> None:
        self._stop.set()
        with self._requests.condition:
            self._requests.condition.notify_all()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=10)
        self.scheduler.shutdown()
        self.runs.shutdown()
        self.pull_requests.close()
        self.statuses.close()
        self._close_socket()
        self.store.close()

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- syncing ------------------------------------------------------------------------------------------------

    def reconcile_schedule(self) -> None:
        """The timer re-reads the triggers (after one was paused or resumed through the API)."""
        self.scheduler.reconcile()

    def request_sync(self, source: str | None, reason: str) -> None:
        """Ask for a sync soon (never inline: webhooks answer at once). Unknown names are ignored."""
        names = [s.name for s in self.settings.sources] if source is None else [source]
        with self._requests.condition:
            for name in names:
                if name in self.health:
                    self._requests.pending.setdefault(name, reason)
            self._requests.condition.notify_all()

    def _sync_worker(self) -> None:
        while not self._stop.is_set():
            with self._requests.condition:
                while not self._requests.pending and not self._stop.is_set():
                    self._requests.condition.wait(timeout=1.0)
                if self._stop.is_set():
                    return
                name, reason = next(iter(self._requests.pending.items()))
                del self._requests.pending[name]
            self._sync(self.settings.source(name), reason)

    def _sync(self, source: SourceConfig, reason: str) -> SyncResult | None:
        from gitsync.sync.apply import sync_source  # dulwich and the loader: imported on the sync worker

        started = time.monotonic()
        self.health[source.name].syncing = True
        try:
            result = sync_source(
                self.store,
                source,
                self.settings.data_path,
                self.registry,
                public_url=self.settings.http.public_url,
                on_status=self.statuses.wake,
            )
        except Exception:  # a bug must not stop the service; it is logged with its traceback and retried by poll
            log.exception("%s: sync crashed (%s)", source.name, reason)
            self._after_sync(source, None)
            return None
        self.metrics.observe_sync(source.name, result.outcome, time.monotonic() - started, _applied(result))
        if result.outcome == "applied":
            self.scheduler.reconcile()
            self._count(source.name)
            release_memory()
        self._after_sync(source, result)
        self.statuses.wake()
        return result

    def _after_sync(self, source: SourceConfig, result: SyncResult | None) -> None:
        """The source's health after a sync, replaced whole: /healthz (another thread) never sees half of it."""
        self.health[source.name] = self.health[source.name].after(result, source.poll.total_seconds())
        with self.synced:
            self.synced.notify_all()

    def _count(self, source: str) -> None:
        self.metrics.set_counts(
            source, flows.count_flows(self.store, source), triggers.count_triggers(self.store, source)
        )

    def _poll_timer(self) -> None:
        for source in self.settings.sources:
            self.health[source.name].next_poll = time.monotonic() + _poll_delay(source.poll.total_seconds(), 0)
        while not self._stop.wait(0.2):
            self._observe_fires()
            now = time.monotonic()
            for source in self.settings.sources:
                health = self.health[source.name]
                if health.next_poll <= now:
                    health.next_poll = now + _poll_delay(source.poll.total_seconds(), health.failures)
                    self.request_sync(source.name, "poll")

    def _poll_triggers(self) -> None:
        """The polling triggers (S3...): each polled every `interval` (`gitsync.schedule.polling`)."""
        from gitsync.schedule.polling import Poller

        Poller(self.runs, self.registry, self.settings.data_path).run(self._stop, time.monotonic)

    def _watch(self, source: SourceConfig, git_dir: Path) -> None:
        """A local repository: sync when the branch's ref moves (a commit, a reset, a fetch)."""
        from watchfiles import watch

        def is_ref(change: Any, path: str) -> bool:
            name = Path(path).name
            return "refs" in Path(path).parts or name in ("packed-refs", "HEAD")

        for _changes in watch(git_dir, watch_filter=is_ref, debounce=50, step=20, stop_event=self._stop):
            self.request_sync(source.name, "local change")

    def _on_fire(self, execution_id: str) -> None:
        """Called on the scheduler's thread for each fire: start the run; metrics are read off the fire path."""
        self._fired.append(execution_id)
        self.runs.start(execution_id)

    def _observe_fires(self) -> None:
        ids: list[str] = []
        while self._fired:
            ids.append(self._fired.popleft())
        for row in executions.fire_times(self.store, ids):
            if row["scheduled_at"]:
                lag = datetime.fromisoformat(row["created_at"]) - datetime.fromisoformat(row["scheduled_at"])
                self.metrics.observe_fire(row["flow_uid"], lag.total_seconds())

    # -- http ---------------------------------------------------------------------------------------------------

    def health_report(self) -> dict[str, Any]:
        """`/healthz`: `status` ok (200) or degraded (503, with the reasons); `phase` starting until every source
        finished its first sync, then running; each source's last sync and whether one is `syncing` now."""
        healths = dict(self.health)  # one view: each source's health is replaced whole after its sync
        sources = {name: h.as_dict() for name, h in healths.items()}
        statuses = self.statuses.health()
        state = state_health(self.store)
        degraded = any(h.degraded for h in healths.values())
        degraded = degraded or statuses.get("status") == "degraded" or state["degraded"]
        phase = "starting" if any(h.last_sync_at is None for h in healths.values()) else "running"
        report: dict[str, Any] = {
            "status": "degraded" if degraded else "ok",
            "phase": phase,
            "sources": sources,
            "statuses": statuses,
            "state": state,
        }
        return _with_executor_health(report, self.runs.executor)

    def _start_http(self) -> None:
        if self.app is None:
            return
        from gitsync.http.server import serve

        self._server, thread = serve(self.app, self.settings.http, self._socket, HTTP_START_SECONDS)
        self._threads.append(thread)

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


_SIGNALS: dict[int, str] = {signal.SIGINT: "SIGINT, Ctrl-C", signal.SIGTERM: "SIGTERM"}


def starting_lines(settings: Settings) -> list[str]:
    """What the service's first log lines say: where its state lives, and each source it follows."""
    lines = [
        f"gitsync {__version__} is starting: state database {os.path.abspath(settings.db)}, "
        f"files in {os.path.abspath(settings.data_dir)} (git caches, execution files, kv store)"
    ]
    for source in settings.sources:
        local = _local_git_dir(source)
        path = Path(source.repo.removeprefix("file://")).expanduser()
        repo = redact_url(source.repo) if local is None else str(path.resolve())
        follows = "watched for commits, " if local else ""
        lines.append(
            f"source '{source.name}': {repo}, branch {source.branch or '(the remote default)'}, "
            f"folder {source.path or '(the root)'}, namespaces {source.namespace_prefix or 'every namespace'}; "
            f"{follows}polled every {_duration(source.poll)}"
        )
    return lines


def running_lines(settings: Settings) -> list[str]:
    """What the service logs once it runs: where HTTP listens, how to stop it, and the commands to try next."""
    url = _local_url(settings.http.listen)
    flags = settings.state_flags()
    commands = [f"gitsync {command}{flags}" for command in ("flows", "triggers", "executions", "run NS.ID")]
    where = "try:" if flags else "try, from this folder:"
    return [
        f"gitsync is running: HTTP API at {url} (health: {url}/healthz); stop it with Ctrl-C (SIGINT) or SIGTERM",
        f"{where} {', '.join(commands)}, curl -s {url}/healthz",
    ]


def _local_url(listen: str) -> str:
    """The URL a command on this machine reaches the listen address by (a wildcard address through loopback)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _duration(interval: timedelta) -> str:
    """`60s`, `5m`, `1h`: as `poll:` is written."""
    seconds = interval.total_seconds()
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= 2 * size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def state_health(store: Store) -> dict[str, Any]:
    """Degraded while the state database refuses writes (remembered by the Store until one commits; a harmless
    write is tried here, at most once a second, so the report clears even when nothing else writes)."""
    if store.write_failure() is not None:
        store.probe_write()
    failure = store.write_failure()
    if failure is None:
        return {"degraded": False, "reason": None}
    return {
        "degraded": True,
        "reason": f"the state database cannot be written: {failure['error']}",
        "since": failure["since"],
    }


def release_memory() -> None:
    """Give back what an applied sync freed (a first sync of 10,000 flows reads and validates every file): a full
    collection frees what cycles held (the loader pauses the collector), and glibc's `malloc_trim` returns the free
    pages of its heap, which it would otherwise keep for the process. Elsewhere than glibc only the collection runs."""
    gc.collect()
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _applied(result: SyncResult) -> str | None:
    return result.commit if result.outcome in ("applied", "unchanged") else None


def _poll_delay(poll: float, failures: int) -> float:
    """The poll interval with ±10% jitter; doubled per consecutive failure, up to ten minutes."""
    base = min(poll * (2**failures), max(MAX_BACKOFF_SECONDS, poll)) if failures else poll
    return base * random.uniform(1 - JITTER, 1 + JITTER)


def _with_executor_health(report: dict[str, Any], executor: object) -> dict[str, Any]:
    """`/healthz` with the executor's own report when it has one (Celery: the broker and the workers seen)."""
    health_report = getattr(executor, "health_report", None)
    if health_report is not None:
        report["executor"] = executed = health_report()
        if executed.get("degraded"):
            report["status"] = "degraded"
    return report


def _local_git_dir(source: SourceConfig) -> Path | None:
    """The git directory of a local repository source (a work tree's .git, or a bare repository)."""
    repo = source.repo.removeprefix("file://")
    if "://" in repo or (":" in repo and not Path(repo).exists()):
        return None
    path = Path(repo).expanduser().resolve()
    if (path / ".git").is_dir():
        return path / ".git"
    if (path / "HEAD").is_file() and (path / "refs").is_dir():
        return path
    return None
