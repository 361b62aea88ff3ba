"""The Redis keys gitsync keeps beside Celery's own, and the one retry loop every Redis call on a worker goes
through (a broker that restarts is waited for, not a reason to lose a result)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

PREFIX = "gitsync:"
DAY = 86_400
log = logging.getLogger("gitsync.workers")
T = TypeVar("T")
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)


def claim(task_run_id: str) -> str:
    """Held (with an expiry) by the worker running the task run; renewed while it runs."""
    return f"{PREFIX}claim:{task_run_id}"


def seen(task_run_id: str) -> str:
    """Set when a worker first started the task run: a later delivery finding it without a claim knows the
    worker that started it is gone."""
    return f"{PREFIX}seen:{task_run_id}"


def result(task_run_id: str) -> str:
    """The task run's one result (written with SET NX: the first writer wins, a redelivery reads it)."""
    return f"{PREFIX}result:{task_run_id}"


def cancel(task_run_id: str) -> str:
    """Set by the control plane to stop the task run (a kill, a timeout)."""
    return f"{PREFIX}cancel:{task_run_id}"


def in_file(task_run_id: str, uri: str) -> str:
    return f"{PREFIX}in:{task_run_id}:{uri}"


def out_file(task_run_id: str, uri: str) -> str:
    return f"{PREFIX}out:{task_run_id}:{uri}"


def reply(executor_id: str) -> str:
    """The list a control plane reads its workers' messages from (started, log batches, done)."""
    return f"{PREFIX}reply:{executor_id}"


def worker(hostname: str) -> str:
    """A worker's heartbeat (JSON, expiring)."""
    return f"{PREFIX}worker:{hostname}"


WORKERS_MATCH = f"{PREFIX}worker:*"


def in_flight(executor_id: str) -> str:
    """A control plane's in-flight count (JSON, expiring), for `gitsync workers`."""
    return f"{PREFIX}inflight:{executor_id}"


IN_FLIGHT_MATCH = f"{PREFIX}inflight:*"


def patiently(call: Callable[[], T], what: str, seconds: float = 600.0) -> T:
    """`call()`, tried again while Redis cannot be reached (up to `seconds`), then its error."""
    deadline = time.monotonic() + seconds
    warned = False
    while True:
        try:
            return call()
        except REDIS_DOWN as exc:
            if time.monotonic() > deadline:
                raise
            if not warned:
                log.warning("Redis cannot be reached while %s (%s); trying again until it answers", what, exc)
                warned = True
            time.sleep(0.5)
