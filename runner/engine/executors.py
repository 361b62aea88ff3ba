"""Executors run rendered runnable tasks: `submit(fn) -> Future`. The engine waits on the future.

`LocalExecutor` (the embedded default) runs tasks on a bounded pool of threads; script tasks start their own
processes from there. `InlineExecutor` runs a task on the caller's thread (tests, `gitsync run`). A Celery
executor implements the same interface: it receives only a rendered task and its context, never the database.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class InlineExecutor:
    def submit(self, fn: Callable[[], dict[str, Any]]) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed back to the engine through the future, like a thread would
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        pass


class LocalExecutor:
    """A bounded pool of worker threads (default 32): at most that many runnable tasks run at once."""

    def __init__(self, workers: int = 32) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="task")

    def submit(self, fn: Callable[[], dict[str, Any]]) -> Future[dict[str, Any]]:
        return self._pool.submit(fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
