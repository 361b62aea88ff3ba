"""`TaskHandle` of a task run sent to a Celery worker: completed by the executor's collector thread."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from runner.engine.invocation import LogSink, TaskInvocation, TaskResult

if TYPE_CHECKING:
    from gitsync.workers.executor import CeleryExecutor


class CeleryHandle:
    def __init__(self, executor: CeleryExecutor, invocation: TaskInvocation, sink: LogSink | None) -> None:
        self.executor = executor
        self.invocation = invocation
        self.sink = sink
        self.queue = invocation.worker_group or executor.config.default_queue
        self.started = threading.Event()
        self.finished = threading.Event()
        self.dispatched_at: float | None = None
        """When it was sent (monotonic); None while it waits for room or for the broker."""
        self.broker_run: str | None = None
        """The Redis server's run id when it was sent (a restart of a Redis without persistence loses it)."""
        self._result: TaskResult | None = None
        self._cancelled = False
        self.lock = threading.Lock()

    @property
    def task_run_id(self) -> str:
        return self.invocation.task_run_id

    def wait_started(self, timeout: float | None = None) -> bool:
        return self.started.wait(timeout)

    def result(self, timeout: float | None = None) -> TaskResult:
        if not self.finished.wait(timeout):
            raise TimeoutError(self.task_run_id)
        assert self._result is not None
        return self._result

    def complete(self, result: TaskResult) -> bool:
        """Set the result once; whether this call set it."""
        with self.lock:
            if self._result is not None:
                return False
            self._result = result
        self.started.set()
        self.finished.set()
        return True

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def log(self, level: str, message: str) -> None:
        if self.sink is not None:
            self.sink(level, message)

    def cancel(self) -> None:
        with self.lock:
            if self._cancelled:
                return
            self._cancelled = True
        self.executor.cancel(self)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def age(self) -> float:
        return 0.0 if self.dispatched_at is None else time.monotonic() - self.dispatched_at
