"""`gitsync worker`: a Celery worker in this process, with the installed plugins, its own data_dir and kv store,
and a heartbeat in Redis. It never opens the state database."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from pathlib import Path

import redis

from gitsync.config import Settings
from gitsync.workers import health, keys
from gitsync.workers.app import build_app
from gitsync.workers.namespace_files import WorkerNamespaceFiles
from gitsync.workers.task import WorkerContext, run_message

log = logging.getLogger("gitsync.workers")


def worker_context(settings: Settings, queues: list[str], hostname: str) -> WorkerContext:
    from gitsync.compose import data_folder, load_registry
    from gitsync.state.kv import SqliteKeyValue
    from runner.engine.executors import WorkerServices

    data_dir = data_folder(settings)
    services = WorkerServices(
        load_registry(),
        data_dir,
        SqliteKeyValue(data_dir / "kv.db"),
        allow_docker_fallback=settings.docker_fallback,
        python=settings.tasks.python,
        python_envs=data_dir / "python" if settings.tasks.python_env == "namespace" else None,
        namespace_files=WorkerNamespaceFiles,
    )
    client = redis.Redis.from_url(settings.celery.store_url(), socket_timeout=10, socket_connect_timeout=2)
    return WorkerContext(settings.celery, client, services, hostname, queues)


def warm(context: WorkerContext) -> None:
    """Import every plugin and build the models of the runnable ones before the first message: a worker's first
    tasks would otherwise each wait on the imports (ten threads at once on one import lock: seconds)."""
    from runner.plugin import Task

    registry = context.services.registry
    registry.load_all(strict=False)
    for cls in registry.classes(strict=False):
        if isinstance(cls, type) and issubclass(cls, Task) and not cls.flowable:
            try:
                cls.model_rebuild()
            except Exception:  # a plugin whose model cannot build fails its own tasks, with its own message
                log.debug("the model of %s does not build", cls.__name__, exc_info=True)


def default_hostname() -> str:
    return f"gitsync-{os.getpid()}@{socket.gethostname()}"


def run_worker(settings: Settings, queues: list[str] | None, concurrency: int, hostname: str | None) -> int:
    """Consume `queues` (default: the default queue) with `concurrency` threads until SIGTERM/SIGINT."""
    queues = queues or [settings.celery.default_queue]
    hostname = hostname or default_hostname()
    context = worker_context(settings, queues, hostname)
    warm(context)
    app = build_app(settings.celery, settings.celery.broker_url(), run=lambda payload: run_message(context, payload))
    stop = threading.Event()
    beating = threading.Thread(target=_beat, args=(context, concurrency, stop), name="heartbeat", daemon=True)
    beating.start()
    log.info("gitsync worker %s consumes %s with %d threads; files in %s", hostname, ",".join(queues),
             concurrency, Path(context.data_dir))  # fmt: skip
    worker = app.Worker(
        queues=queues,
        concurrency=concurrency,
        pool="threads",
        hostname=hostname,
        loglevel="INFO",
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
        optimization="fair",
        quiet=True,
    )
    try:
        worker.start()
    finally:
        stop.set()
        with contextlib.suppress(*keys.REDIS_DOWN):
            context.client.delete(keys.worker(hostname))
    return int(worker.exitcode or 0)


def _beat(context: WorkerContext, concurrency: int, stop: threading.Event) -> None:
    while not stop.is_set():
        with context.lock:
            running = len(context.running)
        with contextlib.suppress(*keys.REDIS_DOWN):
            health.beat(context.client, context.hostname, context.queues, concurrency, running)
        stop.wait(health.HEARTBEAT_SECONDS)
