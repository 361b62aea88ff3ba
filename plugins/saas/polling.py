"""Waiting for a provider's job: ask every `pollFrequency`, give up after `maxDuration`, stop at once on a kill.

The wait sleeps on the task's `cancelled` event, so killing the execution (or the task's own `timeout`) ends it
between two polls rather than after the whole `maxDuration`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from plugins.core._props import as_bool, as_seconds
from runner.api import RunContext, TaskFailed, TaskKilled
from runner.durations import format_duration

T = TypeVar("T")

MIN_POLL = 0.01
"""A zero or negative pollFrequency would spin: every poll waits at least this."""


def seconds(value: Any, name: str, default: float) -> float:
    """A duration property in seconds (its default when unset); a negative one fails the task naming it."""
    found = as_seconds(value, name)
    if found is None:
        return default
    if found < 0:
        raise TaskFailed(f"{name} must be a positive duration, got {value!r}", permanent=True)
    return found


def flag(value: Any, name: str, default: bool) -> bool:
    return default if value is None or value == "" else as_bool(value, name)


def wait_until(ctx: RunContext, what: str, poll: Callable[[], T | None], every: float, limit: float) -> T:
    """The first non-None answer of `poll`, asked every `every` seconds; TaskFailed once `limit` seconds passed.

    `what` says what is waited for, as the user reads it ("Fivetran connector 'x' to finish its sync")."""
    deadline = time.monotonic() + limit
    while True:
        found = poll()
        if found is not None:
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            shown = format_duration(timedelta(seconds=limit))
            raise TaskFailed(f"gave up waiting for {what}: it did not finish within maxDuration {shown}")
        if ctx.cancelled.wait(min(max(every, MIN_POLL), left)):
            raise TaskKilled(f"stopped while waiting for {what}")
