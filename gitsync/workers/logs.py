"""A task's log lines, masked on the worker and sent in batches to its control plane while it runs.

Lines are already bounded per task run (`max_log_lines`, by the runner's logger); the batcher sends one message
per batch (at most `BATCH` lines, or what gathered in `INTERVAL` seconds) onto the control plane's reply list,
where the executor hands each line to the task run's `LogSink`. A Redis that does not answer is waited for.
"""

from __future__ import annotations

import json
import threading
import time

import redis

from gitsync.workers import keys
from runner.masking import Masker

BATCH = 200
INTERVAL = 0.2


def message(kind: str, task_run_id: str, **fields: object) -> str:
    return json.dumps({"kind": kind, "task_run": task_run_id, **fields}, separators=(",", ":"))


class LogBatcher:
    """The `LogSink` of a task run on a worker."""

    def __init__(self, client: redis.Redis, reply: str, task_run_id: str, masker: Masker) -> None:
        self.client = client
        self.reply = reply
        self.task_run_id = task_run_id
        self.masker = masker
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="log-batches", daemon=True)
        self.thread.start()

    def __call__(self, level: str, message: str) -> None:
        line = (level, self.masker.mask(message))
        with self.lock:
            self.lines.append(line)
            first = len(self.lines) == 1
        if first:
            self.wake.set()

    def _loop(self) -> None:
        """Asleep while there is nothing to send; once a line comes, gather for `INTERVAL` (or a full batch)."""
        while not self.closed:
            self.wake.wait()
            self.wake.clear()
            deadline = time.monotonic() + INTERVAL
            while not self.closed and time.monotonic() < deadline:
                with self.lock:
                    if len(self.lines) >= BATCH:
                        break
                time.sleep(min(0.02, INTERVAL))
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
        for start in range(0, len(lines), BATCH):
            self._send(message("logs", self.task_run_id, lines=lines[start : start + BATCH]))

    def _send(self, text: str) -> None:
        keys.patiently(lambda: self.client.rpush(self.reply, text), "sending log lines")

    def close(self) -> None:
        """Send what is left; no line is sent after."""
        self.closed = True
        self.wake.set()
        self.thread.join()
        self.flush()
