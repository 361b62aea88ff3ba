"""What a worker does with one message: claim the task run, fetch its files, run it with the worker's own
plugins and services (never the database), stream its masked logs, enforce its timeout and kill, send back its
output files and its one result."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from gitsync.workers import claims, files, keys
from gitsync.workers.claims import Claim
from gitsync.workers.logs import LogBatcher, message
from gitsync.workers.settings import CeleryConfig
from runner.engine.executors import WorkerServices, run_invocation
from runner.engine.invocation import TaskInvocation, TaskResult
from runner.masking import Masker

log = logging.getLogger("gitsync.workers")


@dataclass
class WorkerContext:
    """What a worker process runs tasks with."""

    config: CeleryConfig
    client: redis.Redis
    services: WorkerServices
    hostname: str
    queues: list[str]
    running: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def data_dir(self) -> Path:
        return self.services.data_dir


def run_message(context: WorkerContext, payload: dict[str, Any]) -> None:
    """Run one delivered message to its recorded result (or drop it as a duplicate)."""
    invocation = TaskInvocation.from_dict(payload["invocation"])
    reply = keys.reply(str(payload["reply"]))
    task_run = invocation.task_run_id
    client, seconds = context.client, context.config.claim_seconds
    claim = keys.patiently(lambda: claims.take(client, task_run, context.hostname, seconds), "claiming a task")
    if claim is Claim.BUSY:
        log.info("task run %s is already running on another worker; this delivery is dropped", task_run)
        return
    if claim is Claim.RUN:
        result = _run(context, invocation, reply)
    elif claim is Claim.LOST:
        log.warning("task run %s was started by a worker that is gone; it is failed, not run again", task_run)
        result = claims.lost_result(invocation.task_id, invocation.attempt)
    else:
        result = TaskResult("FAILED")  # replaced by the stored one below
    if claim is not Claim.DONE:
        result = keys.patiently(lambda: claims.finish(client, task_run, result), "recording a result")
    else:
        result = keys.patiently(lambda: claims.stored_result(client, task_run), "reading a result") or result
    done = message("done", task_run, result=result.to_dict())
    keys.patiently(lambda: client.rpush(reply, done), "sending a result")


def _run(context: WorkerContext, invocation: TaskInvocation, reply: str) -> TaskResult:
    client = context.client
    task_run = invocation.task_run_id
    masker = Masker(invocation.secrets)
    sink = LogBatcher(client, reply, task_run, masker)
    sink(
        "INFO",
        f"running on worker {context.hostname} (queue {invocation.worker_group or context.config.default_queue})",
    )
    cancelled, started = threading.Event(), threading.Event()
    keeper = _Keeper(context, invocation, reply, cancelled, started)
    with context.lock:
        context.running.add(task_run)
    try:
        keys.patiently(lambda: files.receive_inputs(client, invocation, context.data_dir), "fetching input files")
        keeper.start()
        result = run_invocation(context.services, invocation, sink, cancelled, started)
        sink.close()
        result = keys.patiently(
            lambda: files.send_outputs(client, invocation, result, context.data_dir, context.config.max_file_bytes),
            "sending output files",
        )
    finally:
        keeper.stop()
        sink.close() if not sink.closed else None
        with context.lock:
            context.running.discard(task_run)
    if result.error:
        result.error = masker.mask(result.error)
    return result


class _Keeper(threading.Thread):
    """Beside a running task: renews its claim, says when it started, stops it on a kill or past its timeout."""

    def __init__(
        self,
        context: WorkerContext,
        invocation: TaskInvocation,
        reply: str,
        cancelled: threading.Event,
        started: threading.Event,
    ) -> None:
        super().__init__(name=f"keeper-{invocation.task_run_id}", daemon=True)
        self.context = context
        self.invocation = invocation
        self.reply = reply
        self.cancelled = cancelled
        self.started = started
        self.done = threading.Event()

    def stop(self) -> None:
        self.done.set()

    def run(self) -> None:
        client, task_run = self.context.client, self.invocation.task_run_id
        timeout = self.invocation.timeout_seconds
        deadline = time.monotonic() + timeout + 1.0 if timeout is not None else None
        every = min(self.context.config.claim_seconds / 4, 0.5)
        renewed, announced = 0.0, False
        while not self.done.is_set():
            try:
                if not announced and self.started.is_set():
                    client.rpush(self.reply, message("started", task_run))
                    announced = True
                if time.monotonic() - renewed >= self.context.config.claim_seconds / 4:
                    claims.renew(client, task_run, self.context.hostname, self.context.config.claim_seconds)
                    renewed = time.monotonic()
                if not self.cancelled.is_set() and client.exists(keys.cancel(task_run)):
                    self.cancelled.set()
            except keys.REDIS_DOWN:
                pass  # tried again on the next round; the task keeps running
            if deadline is not None and time.monotonic() > deadline:
                self.cancelled.set()  # the task enforces its timeout itself; this one is the worker's backstop
            if not announced:
                self.started.wait(every)  # said at once when the task starts, not on the next round
            else:
                self.done.wait(every)


def decode(raw: bytes | str) -> dict[str, Any]:
    data = json.loads(raw)
    return data if isinstance(data, dict) else {}
