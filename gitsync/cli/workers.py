"""`gitsync worker` (a Celery worker with the installed plugins) and `gitsync workers` (who is seen, queue
depths, task runs in flight)."""

from __future__ import annotations

import argparse
import json

from gitsync.cli.state_commands import settings_from_args as load_cli_settings


def run_worker(args: argparse.Namespace) -> int:
    from gitsync import logsetup
    from gitsync.compose import require_celery

    settings = load_cli_settings(args)
    require_celery()
    logsetup.configure(settings, args.log_level)
    from gitsync.workers.worker import run_worker as start

    queues = [q.strip() for q in (args.queues or "").split(",") if q.strip()] or None
    return start(settings, queues, args.concurrency, args.hostname)


def list_workers(args: argparse.Namespace) -> int:
    from gitsync.compose import require_celery

    settings = load_cli_settings(args)
    require_celery()
    import redis

    from gitsync.workers import health, keys

    config = settings.celery
    client = redis.Redis.from_url(config.store_url(), socket_timeout=5, socket_connect_timeout=2)
    broker = redis.Redis.from_url(config.broker_url(), socket_timeout=5, socket_connect_timeout=2)
    try:
        workers = health.workers_seen(client)
        queues = sorted({config.default_queue, *(q for w in workers for q in w.get("queues", []))})
        depths = {queue: health.queue_depth(broker, queue) for queue in queues}
        in_flight = health.in_flight_total(client)
    except keys.REDIS_DOWN as exc:
        print(f"the Celery broker cannot be reached ({exc}); check {config.broker_url_env}")
        return 1
    if args.format == "json":
        print(json.dumps({"workers": workers, "queues": depths, "in_flight": in_flight}, indent=2))
        return 0
    print(f"{len(workers)} worker(s) seen, {in_flight} task run(s) in flight")
    for worker in workers:
        print(
            f"  {worker['hostname']}: queues {','.join(worker.get('queues', []))}, "
            f"{worker.get('running', 0)}/{worker.get('concurrency', '?')} running, seen {worker.get('seen_at')}"
        )
    print("queues (messages waiting):")
    for queue, depth in depths.items():
        print(f"  {queue}: {depth}")
    return 0
