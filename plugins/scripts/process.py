"""Run a command list as its own process group: streamed, bounded logs; `::{…}::` outputs; kill and timeout.

`run_process(ctx, argv, env=…)` starts `argv` with `start_new_session=True` (a new session, so a new process
group whose id is the child's pid), cwd = `ctx.workdir`, and:

- reads stdout and stderr line by line in two threads and sends each line to `ctx.logger` (stdout at INFO,
  stderr at WARN), up to `MAX_LOGGED_LINES` lines in all and `MAX_LINE_BYTES` bytes a line; past the cap it
  keeps counting lines, logs nothing more, and says so once;
- turns a line `::{"outputs": {…}}::` into outputs (merged into `vars`) and `::{"logs": [{"level", "message"}]}::`
  into log lines at their level (Kestra's script output protocol), on either stream;
- keeps the last `TAIL_LINES` stderr lines for the failure message;
- polls `ctx.cancelled` and `timeout`: when either fires it sends SIGTERM to the whole group, SIGKILL after
  `grace_seconds`, and raises `TaskKilled`. When the main process ends on its own, whatever it left running in
  its group is killed too: a task's processes never outlive it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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


def _read_lines(stream: IO[bytes], sink: _Output, stderr: bool) -> None:
    """Read `stream` to its end, one bounded line at a time."""
    with stream:
        while True:
            chunk = stream.readline(MAX_LINE_BYTES)
            if not chunk:
                return
            if not chunk.endswith(b"\n") and len(chunk) >= MAX_LINE_BYTES:
                _skip_rest_of_line(stream)
                chunk += b" [line cut]"
            sink.line(chunk.rstrip(b"\r\n").decode("utf-8", "replace"), stderr)


def _skip_rest_of_line(stream: IO[bytes]) -> None:
    while True:
        rest = stream.readline(MAX_LINE_BYTES)
        if not rest or rest.endswith(b"\n"):
            return


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


def _wait(proc: subprocess.Popen[bytes], ctx: RunContext, timeout: float | None, grace_seconds: float) -> str | None:
    """Wait for the process; stop its group on kill or timeout and return why (None when it ended by itself)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            proc.wait(POLL_SECONDS)
            return None
        except subprocess.TimeoutExpired:
            pass
        reason = None
        if ctx.cancelled.is_set():
            reason = "killed"
        elif deadline is not None and time.monotonic() >= deadline:
            reason = f"timed out after {timeout:g} s"
            ctx.cancelled.set()
        if reason is not None:
            _stop_group(proc, grace_seconds)
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
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=_read_lines, args=(proc.stdout, sink, False), name="task-stdout", daemon=True),
        threading.Thread(target=_read_lines, args=(proc.stderr, sink, True), name="task-stderr", daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        reason = _wait(proc, ctx, timeout, grace_seconds)
    finally:
        if proc.poll() is None:
            _stop_group(proc, 0)
        _signal_group(proc.pid, signal.SIGKILL)  # leftovers of a process that ended by itself
        for reader in readers:
            reader.join(READER_JOIN_SECONDS)  # a process that left the group may still hold a pipe
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
