"""The process groups of the tasks running in this process, so that a process that must stop at once (a second
Ctrl-C on `gitsync run`) can stop every one of them before it exits: no task process outlives it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

_groups: set[int] = set()
_lock = threading.Lock()


def track(pgid: int) -> None:
    with _lock:
        _groups.add(pgid)


def untrack(pgid: int) -> None:
    with _lock:
        _groups.discard(pgid)


def live() -> list[int]:
    with _lock:
        return sorted(_groups)


def kill_all(sig: signal.Signals = signal.SIGKILL) -> int:
    """Send `sig` to every tracked group; how many there were."""
    groups = live()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    return len(groups)
