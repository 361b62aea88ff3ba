"""The composition root: the one place that builds gitsync's objects from `Settings`.

The command line and the daemon receive what is built here; nothing else constructs a registry, a store, a
renderer or masker, an executor, the status sender or the HTTP app. The registry is loaded once per process and
passed down (there is no process-wide global), so a test or a second app in one process can hold its own.

    registry = load_registry()
    daemon = build_daemon(settings, registry)     # store, executions, statuses, pull requests, HTTP app
    runs = build_runs(store, settings, registry)  # for `gitsync run`, `kill`, `resume`

`executor:` is read here: `local` (the embedded default) is a pool of threads in this process; a kind that is
not built yet is refused with a `ConfigError` that says what to use instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gitsync.errors import ConfigError
from runner.registry import Registry, load_entry_points

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from gitsync.config import Settings
    from gitsync.daemon import Daemon
    from gitsync.executions.manager import RunManager, RunServices
    from gitsync.executions.recorder import Progress
    from gitsync.state.database import Store
    from gitsync.statuses.sender import OutboxSender
    from runner.engine.executors import WorkerServices
    from runner.engine.invocation import Executor

# What a command does not use is not imported: `gitsync flows` needs no engine, `validate` no HTTP server.

EXECUTORS = ("local",)
"""The executor kinds this build can run; `celery` is accepted by the configuration's schema but not built yet."""

_EVERY_SOURCE: frozenset[str] = frozenset({"*"})


def load_registry() -> Registry:
    """The installed plugins (entry points of `gitsync.plugins`), loaded once by whoever holds the result. Each
    plugin's module is imported when its type is first resolved (a flow uses it), not before."""
    return load_entry_points(lazy=True)


def open_store(settings: Settings) -> Store:
    from gitsync.state.database import Store

    return Store(settings.db)


def data_folder(settings: Settings) -> Path:
    """`data_dir`, absolute, created, and shown to take a new file; a `ConfigError` saying so when it does not.

    Asked before anything is written there (the git caches, the kv store, execution files), so a folder on a
    read-only file system, without write permission, or under a regular file stops the command with one message.
    """
    data_dir = settings.data_path.resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".gitsync-write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"data_dir {settings.data_dir} cannot be written ({exc.strerror or exc}): it holds the git caches, the kv "
            "store and the execution files: set data_dir (--data-dir, GITSYNC_DATA_DIR) to a folder gitsync can write"
        ) from None
    return data_dir


def build_executor(settings: Settings, worker: WorkerServices) -> Executor:
    """The executor `settings.executor` names; refused with a clear message when it is not built yet."""
    from runner.engine.executors import LocalExecutor

    if settings.executor == "local":
        return LocalExecutor(worker, settings.workers)
    raise ConfigError(
        f"executor: {settings.executor} is not available in this version of gitsync; "
        f"use one of: {', '.join(EXECUTORS)} (runnable tasks then run in the gitsync process)"
    )


def build_run_services(settings: Settings, registry: Registry, environ: Mapping[str, str] | None = None) -> RunServices:
    """Renderer and masker (one per process, sharing the secrets), the kv store and the executors.

    The renderer is a `LazyRenderer`: built, with Jinja and the expression functions imported, when the process
    first renders, so a daemon that runs nothing holds none of it. Tasks get a clean environment
    (`task_environment`: PATH, HOME, TMPDIR, TZ, locale and `tasks.env_allow`), never the service's whole
    `environ`; expressions still read `{{ envs.x }}` from all of it."""
    environ = os.environ if environ is None else environ
    from gitsync.executions.manager import RunServices, task_environment
    from gitsync.state.kv import SqliteKeyValue
    from runner.engine.executors import InlineExecutor, WorkerServices
    from runner.expressions.lazy import LazyRenderer
    from runner.expressions.variables import load_secrets
    from runner.masking import Masker

    try:
        secrets = load_secrets(settings.secrets_file) if settings.secrets_file else {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"secrets_file {settings.secrets_file}: {exc}") from exc
    masker = Masker()
    renderer = LazyRenderer(masker, secrets)
    data_dir = data_folder(settings)
    kv = SqliteKeyValue(data_dir / "kv.db")
    worker = WorkerServices(
        registry,
        data_dir,
        kv,
        masker.values,
        settings.docker_fallback,
        python=settings.tasks.python,
        python_envs=data_dir / "python" if settings.tasks.python_env == "namespace" else None,
    )
    return RunServices(
        registry=registry,
        renderer=renderer,
        masker=masker,
        kv=kv,
        executor=build_executor(settings, worker),
        inline_executor=InlineExecutor(worker),
        data_dir=data_dir,
        env=dict(environ),
        task_env=task_environment(environ, settings.tasks.env_allow),
        ui_url=settings.http.public_url,
    )


def build_runs(
    store: Store,
    settings: Settings,
    registry: Registry,
    progress: Progress | None = None,
    status_sources: frozenset[str] | None = _EVERY_SOURCE,
    owner: tuple[str, str] | None = None,
) -> RunManager:
    """Executions over `store`. Their commit statuses go to the sources with a `status:` block, unless
    `status_sources` names others (None: every source). `owner` (kind, label) is given by a process that runs
    executions: `("daemon", …)`, or `("cli", …)` for `gitsync run`, which hands what it creates for others to
    follow to the daemon when one runs."""
    from gitsync.executions.manager import RunManager
    from gitsync.executions.ownership import Lease, Owner

    if status_sources is _EVERY_SOURCE:
        status_sources = frozenset(s.name for s in settings.sources if s.status is not None)
    lease = Lease(store, Owner.here(owner[0], owner[1], settings.lease_seconds)) if owner else None
    services = build_run_services(settings, registry)
    hand_off = owner is not None and owner[0] != "daemon"
    return RunManager(store, services, progress, status_sources, lease, hand_off)


def build_statuses(settings: Settings, store: Store) -> OutboxSender:
    from gitsync.statuses.sender import OutboxSender

    return OutboxSender.from_settings(store, settings)


def build_daemon(settings: Settings, registry: Registry) -> Daemon:
    """The whole service: one store, its executions, the status sender, pull-request plans and the HTTP app."""
    from gitsync.daemon import Daemon, DaemonParts
    from gitsync.http.metrics import Metrics
    from gitsync.sync.pull_requests import PullRequestPlanner

    data_folder(settings)  # before the store is opened: a folder that cannot be written stops the daemon first
    store = open_store(settings)
    try:
        runs = build_runs(store, settings, registry, owner=("daemon", "gitsync daemon"))
    except BaseException:
        store.close()
        raise
    statuses = build_statuses(settings, store)
    pull_requests = PullRequestPlanner(settings, store, registry, wake=statuses.wake)
    parts = DaemonParts(store, registry, runs, statuses, pull_requests, Metrics())
    daemon = Daemon(settings, parts)
    daemon.app = build_http_app(settings, daemon)
    return daemon


def build_http_app(settings: Settings, daemon: Daemon) -> Starlette:
    from gitsync.http.app import build_app

    return build_app(
        settings,
        daemon.store,
        request_sync=daemon.request_sync,
        health=daemon.health_report,
        metrics=daemon.metrics,
        runs=daemon.runs,
        on_pull_request=daemon.pull_requests.submit,
        on_triggers_changed=daemon.reconcile_schedule,
    )
