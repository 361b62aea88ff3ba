"""`CeleryExecutor`: the control plane's side of the Celery executor, implementing `runner`'s `Executor`.

`submit` returns at once; a dispatcher thread sends each invocation to the queue its `workerGroup.key` names (its
input files first), never more than `max_in_flight` at a time, and pauses while the broker does not answer.
A collector thread reads the workers' replies (started, log batches, done) from this control plane's list,
completes the handles (output files stored in the execution's storage first), and every second checks the task
runs in flight against their claims: a result that exists is taken even if its reply was lost; a task run
whose worker stopped renewing its claim is FAILED "worker lost"; one a restarted Redis forgot is sent again.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import redis

from gitsync.workers import claims, files, keys
from gitsync.workers.app import TASK_NAME, build_app
from gitsync.workers.handle import CeleryHandle
from gitsync.workers.health import BrokerHealth
from gitsync.workers.settings import CeleryConfig
from runner.api import TaskFailed
from runner.engine.invocation import LogSink, TaskInvocation, TaskResult
from runner.states import State

log = logging.getLogger("gitsync.workers")
CHECK_SECONDS = 1.0
HEALTH_SECONDS = 2.0


class CeleryExecutor:
    def __init__(
        self,
        config: CeleryConfig,
        broker_url: str,
        store_url: str,
        data_dir: Path,
        secrets: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.secrets = secrets
        self.id = uuid.uuid4().hex
        self.reply = keys.reply(self.id)
        self.app = build_app(config, broker_url)
        self.client = redis.Redis.from_url(store_url, socket_timeout=5, socket_connect_timeout=2)
        self.health = BrokerHealth([config.default_queue])
        self.room = threading.BoundedSemaphore(config.max_in_flight)
        self.waiting: collections.deque[CeleryHandle] = collections.deque()
        self.wake = threading.Condition()
        self.handles: dict[str, CeleryHandle] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.broker_run: str | None = None
        self.reconnected_at = time.monotonic()
        self.peak_in_flight = 0
        self._threads = [
            threading.Thread(target=self._dispatch_loop, name="celery-dispatch", daemon=True),
            threading.Thread(target=self._collect_loop, name="celery-collect", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- Executor ---------------------------------------------------------------------------------------------

    def submit(self, invocation: TaskInvocation, sink: LogSink | None = None) -> CeleryHandle:
        text = json.dumps(invocation.properties) + json.dumps(invocation.env)
        invocation.secrets = [value for value in self.secrets() if value and value in text]
        handle = CeleryHandle(self, invocation, sink)
        self.health.note_queue(handle.queue)
        with self.wake:
            self.waiting.append(handle)
            self.wake.notify()
        return handle

    def shutdown(self) -> None:
        self.stopping.set()
        with self.wake:
            self.wake.notify_all()

    # -- what /healthz, /metrics and `gitsync workers` read -----------------------------------------------------

    @property
    def in_flight(self) -> int:
        with self.lock:
            return len(self.handles)

    def health_report(self) -> dict[str, Any]:
        report = self.health.report(self.in_flight, len(self.waiting), self.config.max_in_flight)
        report["peak_in_flight"] = self.peak_in_flight
        return report

    def metric_lines(self) -> list[str]:
        return self.health.metric_lines(self.in_flight, len(self.waiting))

    # -- dispatch ---------------------------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self.stopping.is_set():
            with self.wake:
                while not self.waiting and not self.stopping.is_set():
                    self.wake.wait()
                if self.stopping.is_set():
                    return
                handle = self.waiting.popleft()
            if handle.done:
                continue
            self.room.acquire()
            with self.lock:
                self.handles[handle.task_run_id] = handle
                self.peak_in_flight = max(self.peak_in_flight, len(self.handles))
            self._send(handle)

    def _send(self, handle: CeleryHandle) -> None:
        """Send one handle's message, waiting for the broker as long as it does not answer."""
        while not self.stopping.is_set() and not handle.done:
            try:
                files.send_inputs(self.client, handle.invocation, self.data_dir, self.config.max_file_bytes)
                payload = {"invocation": handle.invocation.to_dict(), "reply": self.id}
                self.app.send_task(
                    TASK_NAME, args=[payload], queue=handle.queue, task_id=handle.task_run_id, retry=False
                )
                handle.dispatched_at, handle.broker_run = time.monotonic(), self.broker_run
                return
            except TaskFailed as exc:  # an input file over celery.max_file_mb
                self._finish(handle, TaskResult(State.FAILED.value, error=exc.message, permanent=True))
                return
            except Exception as exc:  # the broker is away (kombu's and redis's errors): wait, send again
                self.health.down(exc)
                self.stopping.wait(0.5)

    def cancel(self, handle: CeleryHandle) -> None:
        """A kill or a timeout: the worker stops the task (its process group); one not started yet ends KILLED."""
        try:
            self.client.set(keys.cancel(handle.task_run_id), "1", ex=keys.DAY)
            self.app.control.revoke(handle.task_run_id)
        except Exception as exc:
            self.health.down(exc)
        if not handle.started.is_set():
            killed = TaskResult(
                State.KILLED.value, error=f"task {handle.invocation.task_id!r} was killed before it started"
            )
            with contextlib.suppress(*keys.REDIS_DOWN):
                killed = claims.finish(self.client, handle.task_run_id, killed)
            if killed.state == State.KILLED.value or handle.dispatched_at is None:
                self._finish(handle, killed)

    # -- collect ----------------------------------------------------------------------------------------------

    def _collect_loop(self) -> None:
        checked = refreshed = 0.0
        while not self.stopping.is_set():
            try:
                item: Any = self.client.blpop([self.reply], timeout=0.5)
                self._was_up()
                raw = None if item is None else item[1]
                while raw is not None:
                    self._on_reply(json.loads(raw))
                    raw = self.client.lpop(self.reply)
                now = time.monotonic()
                if now - checked >= CHECK_SECONDS:
                    checked = now
                    self._check()
                if now - refreshed >= HEALTH_SECONDS:
                    refreshed = now
                    self.health.refresh(self.client)
                    self.client.set(keys.in_flight(self.id), json.dumps({"in_flight": self.in_flight}), ex=10)
            except keys.REDIS_DOWN as exc:
                self.health.down(exc)
                self.stopping.wait(0.5)
            except Exception:
                log.exception("the Celery collector failed; it goes on")
                self.stopping.wait(0.5)

    def _was_up(self) -> None:
        if not self.health.reachable or self.broker_run is None:
            self.broker_run = str(self.client.info("server").get("run_id"))
            self.reconnected_at = time.monotonic()
            self.health.up()

    def _on_reply(self, data: dict[str, Any]) -> None:
        with self.lock:
            handle = self.handles.get(str(data.get("task_run")))
        if handle is None or handle.done:
            return  # a duplicate, or a task run this process no longer waits for
        kind = data.get("kind")
        if kind == "started":
            handle.started.set()
        elif kind == "logs":
            for level, line in data.get("lines", []):
                handle.log(str(level), str(line))
        elif kind == "done":
            self._finish(handle, TaskResult.from_dict(data["result"]))

    def _finish(self, handle: CeleryHandle, result: TaskResult) -> None:
        if handle.done:
            return
        if result.output_files or handle.invocation.input_files:
            result = keys.patiently(lambda: self._files_back(handle, result), "reading output files")
        with self.lock:
            held = self.handles.pop(handle.task_run_id, None) is not None
        if handle.complete(result) and held:
            self.room.release()

    def _files_back(self, handle: CeleryHandle, result: TaskResult) -> TaskResult:
        received = files.receive_outputs(self.client, handle.invocation, result, self.data_dir)
        files.forget_inputs(self.client, handle.invocation)
        return received

    def _check(self) -> None:
        """The task runs in flight against Redis: results whose reply was lost, workers lost, messages forgotten."""
        with self.lock:
            handles = [h for h in self.handles.values() if h.dispatched_at is not None and not h.done]
        if not handles:
            return
        pipe = self.client.pipeline(transaction=False)
        for handle in handles:
            pipe.exists(keys.result(handle.task_run_id))
            pipe.exists(keys.claim(handle.task_run_id))
            pipe.exists(keys.seen(handle.task_run_id))
        found = pipe.execute()
        grace = self.config.claim_seconds
        for i, handle in enumerate(handles):
            has_result, has_claim, was_seen = found[3 * i : 3 * i + 3]
            if has_result:
                stored = claims.stored_result(self.client, handle.task_run_id)
                if stored is not None:
                    self._finish(handle, stored)
            elif was_seen and not has_claim:
                lost = claims.lost_result(handle.invocation.task_id, handle.invocation.attempt)
                self._finish(handle, claims.finish(self.client, handle.task_run_id, lost))
            elif (
                not was_seen and handle.broker_run != self.broker_run and time.monotonic() - self.reconnected_at > grace
            ):
                log.warning("Redis restarted and lost task run %s; it is sent again", handle.task_run_id)
                handle.dispatched_at = None
                self._send(handle)
