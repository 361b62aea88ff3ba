"""What the control plane knows of its broker and workers: whether Redis answers (dispatch pauses while it does
not), the queues' depths, the workers seen (their heartbeats), and how many task runs are in flight.

Read by `/healthz`, `/metrics` and `gitsync workers` from a snapshot the executor's collector thread refreshes,
so a health check never waits on Redis.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from gitsync.workers import keys

PRIORITY_SEP = "\x06\x16"
HEARTBEAT_SECONDS = 3.0
HEARTBEAT_TTL = 15


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a queue (kombu's Redis transport keeps a list per queue and priority step)."""
    pipe = client.pipeline(transaction=False)
    pipe.llen(queue)
    for step in (3, 6, 9):
        pipe.llen(f"{queue}{PRIORITY_SEP}{step}")
    return sum(int(n) for n in pipe.execute())


def workers_seen(client: redis.Redis) -> list[dict[str, Any]]:
    """Every worker whose heartbeat has not expired, by hostname."""
    names = sorted(client.scan_iter(keys.WORKERS_MATCH, count=200))
    found = []
    for raw in client.mget(names) if names else []:
        if raw is not None:
            found.append(json.loads(raw))
    return sorted(found, key=lambda w: str(w.get("hostname")))


def in_flight_total(client: redis.Redis) -> int:
    names = list(client.scan_iter(keys.IN_FLIGHT_MATCH, count=200))
    return sum(json.loads(raw).get("in_flight", 0) for raw in (client.mget(names) if names else []) if raw)


def beat(client: redis.Redis, hostname: str, queues: list[str], concurrency: int, running: int) -> None:
    """A worker's heartbeat: who it is, what it consumes, how busy it is."""
    data = {
        "hostname": hostname,
        "queues": queues,
        "concurrency": concurrency,
        "running": running,
        "seen_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    client.set(keys.worker(hostname), json.dumps(data), ex=HEARTBEAT_TTL)


@dataclass
class BrokerHealth:
    """The broker's state as the control plane saw it last, and the snapshot of queues and workers."""

    queues: list[str]
    reachable: bool = True
    down_since: float | None = None
    error: str | None = None
    depths: dict[str, int] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def down(self, exc: BaseException) -> None:
        with self.lock:
            if self.reachable:
                self.reachable, self.down_since = False, time.monotonic()
            self.error = str(exc) or type(exc).__name__

    def up(self) -> None:
        with self.lock:
            self.reachable, self.down_since, self.error = True, None, None

    def refresh(self, client: redis.Redis) -> None:
        depths = {queue: queue_depth(client, queue) for queue in self.queues}
        workers = workers_seen(client)
        with self.lock:
            self.depths, self.workers = depths, workers

    def note_queue(self, queue: str) -> None:
        with self.lock:
            if queue not in self.queues:
                self.queues.append(queue)

    def report(self, in_flight: int, waiting: int, max_in_flight: int) -> dict[str, Any]:
        with self.lock:
            state: dict[str, Any] = {
                "kind": "celery",
                "broker": "ok" if self.reachable else "unreachable",
                "in_flight": in_flight,
                "max_in_flight": max_in_flight,
                "waiting": waiting,
                "queues": dict(self.depths),
                "workers": [dict(w) for w in self.workers],
                "degraded": not self.reachable,
            }
            if not self.reachable:
                down = time.monotonic() - (self.down_since or time.monotonic())
                state["message"] = (
                    f"the Celery broker cannot be reached for {down:.0f}s ({self.error}): no task is sent to the "
                    "workers until it answers; the tasks waiting are sent then, none is dropped"
                )
            return state

    def metric_lines(self, in_flight: int, waiting: int) -> list[str]:
        """The Prometheus text lines of the executor."""
        with self.lock:
            lines = [
                "# HELP gitsync_celery_broker_up Whether the Celery broker answers (1) or not (0)",
                "# TYPE gitsync_celery_broker_up gauge",
                f"gitsync_celery_broker_up {1 if self.reachable else 0}",
                "# HELP gitsync_celery_in_flight Task runs sent to workers and not finished",
                "# TYPE gitsync_celery_in_flight gauge",
                f"gitsync_celery_in_flight {in_flight}",
                "# HELP gitsync_celery_waiting Task runs waiting in the control plane to be sent (max_in_flight)",
                "# TYPE gitsync_celery_waiting gauge",
                f"gitsync_celery_waiting {waiting}",
                "# HELP gitsync_celery_queue_depth Messages waiting in a Celery queue",
                "# TYPE gitsync_celery_queue_depth gauge",
            ]
            lines += [f'gitsync_celery_queue_depth{{queue="{q}"}} {n}' for q, n in sorted(self.depths.items())]
            lines += [
                "# HELP gitsync_celery_workers Workers whose heartbeat is live",
                "# TYPE gitsync_celery_workers gauge",
                f"gitsync_celery_workers {len(self.workers)}",
            ]
            return lines
