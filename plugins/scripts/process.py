"""Run a command list as its own process group: streamed, bounded logs; `::{…}::` outputs; kill and timeout.

`run_process(ctx, argv, env=…)` starts `argv` with `start_new_session=True` (a new session, so a new process
group whose id is the child's pid), cwd = `ctx.workdir`, and:

- reads stdout and stderr line by line in two threads and sends each line to `ctx.logger` (stdout at INFO,
  stderr at WARN), up to `MAX_LOGGED_LINES` lines in all and `MAX_LINE_BYTES` bytes a line; past the cap it
  keeps counting lines, logs nothing more, and says so once;
- turns a line `::{"outputs": {…}}::` into outputs (merged into `vars`), `::{"logs": [{"level", "message"}]}::`
  into log lines at their level and `::{"metrics": [{"name", "type", "value", "tags"}]}::` into one INFO line
  per metric (Kestra's script output protocol; gitsync keeps no metric series), on either stream;
- keeps the last `TAIL_LINES` stderr lines for the failure message;
- polls `ctx.cancelled` and `timeout`: when either fires it sends SIGTERM to the whole group, SIGKILL after
  `grace_seconds`, and raises `TaskKilled`. When the main process ends on its own, whatever it left running in
  its group is killed too: a task's processes never outlive it.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import process_groups
from runner.api import RunContext, TaskKilled

MAX_LOGGED_LINES = 10_000
"""Lines (stdout + stderr) sent to the task log; later lines are counted only."""
MAX_LINE_BYTES = 16 * 1024
"""Longer lines are cut (the rest of the line is read and dropped)."""
TAIL_LINES = 20
"""Lines of stderr quoted when the process fails."""
POLL_SECONDS = 0.05
GRACE_SECONDS = 5.0
READER_JOIN_SECONDS = 5.0

LineHook = Callable[[str], tuple[str, str] | None]
"""Turns a stdout line into (level, message) to log instead of the raw line; None keeps the default."""


@dataclass
class ProcessResult:
    exit_code: int
    vars: dict[str, Any] = field(default_factory=dict)
    stdout_lines: int = 0
    stderr_lines: int = 0
    stderr_tail: list[str] = field(default_factory=list)


class _Output:
    """What the two reader threads share: counts, the log cap, outputs, the stderr tail."""

    def __init__(self, ctx: RunContext, stdout_hook: LineHook | None) -> None:
        self.ctx = ctx
        self.stdout_hook = stdout_hook
        self.lock = threading.Lock()
        self.logged = 0
        self.capped = False
        self.result = ProcessResult(exit_code=-1)
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def line(self, text: str, stderr: bool) -> None:
        with self.lock:
            if stderr:
                self.result.stderr_lines += 1
                self.tail.append(text)
            else:
                self.result.stdout_lines += 1
            if self._protocol(text):
                return
            level, message = "WARN" if stderr else "INFO", text
            if not stderr and self.stdout_hook is not None:
                level, message = self.stdout_hook(text) or (level, message)
            self._log(level, message)

    def _protocol(self, text: str) -> bool:
        """Handle a `::{json}::` line; True when it was one."""
        stripped = text.strip()
        if not (stripped.startswith("::{") and stripped.endswith("}::")):
            return False
        try:
            payload = json.loads(stripped[2:-2])
        except ValueError:
            return False
        if not isinstance(payload, dict):
            return False
        outputs = payload.get("outputs")
        if isinstance(outputs, dict):
            self.result.vars.update(outputs)
        for entry in payload.get("logs") or []:
            if isinstance(entry, dict):
                self._log(str(entry.get("level", "INFO")).upper(), str(entry.get("message", "")))
        for metric in payload.get("metrics") or []:
            if isinstance(metric, dict):
                self._log("INFO", _metric_line(metric))
        return True

    def _log(self, level: str, message: str) -> None:
        if self.logged >= MAX_LOGGED_LINES:
            if not self.capped:
                self.capped = True
                self.ctx.logger.warn(
                    f"output cut after {MAX_LOGGED_LINES} lines: further lines are counted but not logged"
                )
            return
        self.logged += 1
        self.ctx.logger.log(level if level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR") else "INFO", message)


def _metric_line(metric: dict[str, Any]) -> str:
    """A metric sent by the script (gitsync keeps no metric series: it logs each one)."""
    tags = metric.get("tags")
    shown = ", ".join(f"{k}={v}" for k, v in tags.items()) if isinstance(tags, dict) and tags else ""
    kind = metric.get("type", "metric")
    return f"metric {metric.get('name')} ({kind}) = {metric.get('value')}" + (f" [{shown}]" if shown else "")


class _Lines:
    """Splits one pipe's bytes into bounded lines for the sink (a line longer than MAX_LINE_BYTES is cut)."""

    def __init__(self, sink: _Output, stderr: bool) -> None:
        self.sink = sink
        self.stderr = stderr
        self.buffer = bytearray()
        self.skipping = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) >= MAX_LINE_BYTES and not self.skipping:
                    self._emit(bytes(self.buffer[:MAX_LINE_BYTES]) + b" [line cut]")
                    self.skipping = True
                if self.skipping:
                    self.buffer.clear()
                return
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            if self.skipping:
                self.skipping = False
                continue
            self._emit(line[:MAX_LINE_BYTES] + (b" [line cut]" if len(line) > MAX_LINE_BYTES else b""))

    def close(self) -> None:
        if self.buffer and not self.skipping:
            self._emit(bytes(self.buffer))
        self.buffer.clear()

    def _emit(self, line: bytes) -> None:
        self.sink.line(line.rstrip(b"\r").decode("utf-8", "replace"), self.stderr)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stop_group(proc: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """SIGTERM the group, wait up to the grace period for the leader, then SIGKILL whatever is left."""
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _pump(
    proc: subprocess.Popen[bytes], sink: _Output, ctx: RunContext, timeout: float | None, grace_seconds: float
) -> str | None:
    """Read both pipes on this thread (no reader threads, no polled wait) until they close; stop the process group
    on kill or timeout and return why (None when the process ended by itself)."""
    assert proc.stdout is not None and proc.stderr is not None
    selector = selectors.PollSelector()  # two pipes: no epoll descriptor to create and close per task
    for stream, stderr in ((proc.stdout, False), (proc.stderr, True)):
        os.set_blocking(stream.fileno(), False)
        selector.register(stream, selectors.EVENT_READ, _Lines(sink, stderr))
    deadline = None if timeout is None else time.monotonic() + timeout
    reason: str | None = None
    exited_at: float | None = None
    try:
        while selector.get_map():
            for key, _ in selector.select(POLL_SECONDS):
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    key.data.feed(data)
                else:
                    key.data.close()
                    selector.unregister(key.fileobj)
            if reason is None:
                if ctx.cancelled.is_set():
                    reason = "killed"
                elif deadline is not None and time.monotonic() >= deadline:
                    reason = f"timed out after {timeout:g} s"
                    ctx.cancelled.set()
                if reason is not None:
                    _stop_group(proc, grace_seconds)
            if proc.poll() is not None:
                if exited_at is None:  # leftovers of the group would keep the pipes open: stop them now
                    _signal_group(proc.pid, signal.SIGKILL)
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > READER_JOIN_SECONDS:  # a process that left the group holds a pipe
                    break
    finally:
        for key in list(selector.get_map().values()):
            key.data.close()
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
    if reason is None:
        proc.wait()
    return reason


def run_process(
    ctx: RunContext,
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    timeout: float | None = None,
    grace_seconds: float = GRACE_SECONDS,
    stdout_hook: LineHook | None = None,
    on_kill: Callable[[], None] | None = None,
) -> ProcessResult:
    """Run `argv` in its own process group; raise TaskKilled when cancelled or past `timeout` (default ctx's)."""
    timeout = ctx.timeout_seconds if timeout is None else timeout
    sink = _Output(ctx, stdout_hook)
    proc = subprocess.Popen(
        argv,
        cwd=cwd or ctx.workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    process_groups.track(proc.pid)
    ctx.mark_started()
    try:
        reason = _pump(proc, sink, ctx, timeout, grace_seconds)
    finally:
        if proc.poll() is None:
            _stop_group(proc, 0)
        _signal_group(proc.pid, signal.SIGKILL)  # leftovers of a process that ended by itself
        process_groups.untrack(proc.pid)
    if reason is not None:
        if on_kill is not None:
            on_kill()
        raise TaskKilled(f"the process was {reason}; its process group was stopped", outputs=_outputs(sink))
    sink.result.exit_code = proc.returncode
    sink.result.stderr_tail = list(sink.tail)
    return sink.result


def _outputs(sink: _Output) -> dict[str, Any]:
    return {
        "vars": sink.result.vars,
        "stdOutLineCount": sink.result.stdout_lines,
        "stdErrLineCount": sink.result.stderr_lines,
    }
