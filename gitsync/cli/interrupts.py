"""Ctrl-C and SIGTERM on `gitsync run`: kill the run as `gitsync kill` does, and never leave a task process."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any

from gitsync.executions.manager import RunError, RunManager
from gitsync.state import lost as lost_rows


class Interrupts:
    """Ctrl-C and SIGTERM on `gitsync run`.

    The first signal kills the run as `gitsync kill` does (its task processes stopped, KILLED, a line saying so)
    and the command exits with 128 + the signal; if that takes longer than `GRACE` seconds, or on a second signal,
    every task process group is killed at once, what this process owns is marked KILLED (best effort) and it
    exits. The handler only wakes a thread: the kill itself needs the database, which the interrupted main
    thread may be in the middle of using.
    """

    GRACE = 4.0

    def __init__(self, manager: RunManager, db: str) -> None:
        self.manager = manager
        self.db = db
        self.execution_id: str | None = None
        self.signal: int | None = None
        self._count = 0
        self._wake = threading.Event()
        self._done = threading.Event()
        self._previous: dict[int, Any] = {}
        self._thread: threading.Thread | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        self._thread = threading.Thread(target=self._act, name="interrupts", daemon=True)
        self._thread.start()

    def restore(self) -> None:
        self._done.set()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signal is None:
            self.signal = signum
        self._count += 1
        self._wake.set()

    def _act(self) -> None:
        self._wake.wait()
        self._wake.clear()
        name = signal.Signals(self.signal or signal.SIGINT).name
        ids = [i for i in [self.execution_id, *self.manager.active()] if i] if self.execution_id else []
        print(
            f"gitsync run: {name}: killing execution {', '.join(dict.fromkeys(ids)) or '(none yet)'}; "
            "press Ctrl-C again to stop at once",
            file=sys.stderr,
            flush=True,
        )
        for execution_id in dict.fromkeys(ids):
            with contextlib.suppress(RunError):  # it ended meanwhile
                self.manager.request_kill(execution_id)
        if not ids:
            self._exit_now("nothing was running yet")
        deadline = time.monotonic() + self.GRACE
        while self._count < 2 and not self._done.is_set() and time.monotonic() < deadline:
            self._wake.wait(0.1)
            self._wake.clear()
        if self._count < 2 and self._done.is_set():
            return  # the run ended KILLED in time; the command exits by itself
        self._exit_now("a second signal" if self._count >= 2 else f"the run did not stop within {self.GRACE:g} s")

    def _exit_now(self, why: str) -> None:
        from runner import process_groups

        killed = process_groups.kill_all()
        owner = self.manager.lease.id if self.manager.lease is not None else None
        ended = lost_rows.abandon_owned(self.db, owner, "killed: gitsync run was interrupted") if owner else 0
        print(
            f"gitsync run: stopped at once on {why} ({killed} task process group(s) killed, {ended} execution(s) "
            "marked KILLED)",
            file=sys.stderr,
            flush=True,
        )
        os._exit(128 + (self.signal or signal.SIGINT))
