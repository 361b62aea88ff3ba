"""Retry policies (KESTRA_SPEC §6): constant, exponential, random; maxAttempts and maxDuration; which `retry`
applies to a failed task, and whether it retries the task in its execution or creates a new execution.

As in Kestra, a runnable task that fails uses its own `retry`, else that of the nearest flowable around it that
has one (`Scope.retry`), else the flow's. Its `behavior` says how: RETRY_FAILED_TASK (the default) runs the task
again in the same execution; CREATE_NEW_EXECUTION ends the execution, which the control plane marks RETRIED and
runs again as a new execution (gitsync.executions.running), counting attempts and maxDuration over the chain.

Kestra retries every failure its policy allows. gitsync does too, but for permanent errors (`TaskFailed.permanent`:
an HTTP 4xx other than 408 and 429, a refused connection, an unknown host, an invalid URL, a command that is not
installed): trying those again fails the same way, so they end the task at once unless the retry says
`retryPermanentErrors: true`. A task without `retry` is never retried, as in Kestra.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from runner.durations import parse_duration
from runner.plugin import RetryBehavior, Task


def seconds_of(value: Any) -> float | None:
    """A duration (timedelta or number of seconds) in seconds; None for anything else (e.g. an expression)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    return None


def rendered_seconds(value: Any) -> float | None:
    """A rendered duration property in seconds: ISO-8601 text (`PT1S`, what an expression renders to), a
    timedelta or a number; None when unset or unreadable (the task's validation then names the problem)."""
    if isinstance(value, str):
        try:
            return parse_duration(value).total_seconds()
        except ValueError:
            return None
    return seconds_of(value)


@dataclass(frozen=True)
class RetryPolicy:
    kind: str | None = None
    max_attempts: int | None = None
    max_duration: float | None = None
    interval: float = 0.0
    max_interval: float | None = None
    min_interval: float = 0.0
    factor: float = 2.0
    warning_on_retry: bool = False
    retry_permanent_errors: bool = False

    @classmethod
    def of(cls, retry: Any) -> RetryPolicy:
        """The policy of a `retry` block (a validated `runner.plugin.Retry`); no retry for None."""
        if retry is None:
            return cls()
        return cls(
            kind=retry.type,
            max_attempts=retry.maxAttempts,
            max_duration=retry.maxDuration.total_seconds() if retry.maxDuration else None,
            interval=seconds_of(getattr(retry, "interval", None)) or 0.0,
            max_interval=seconds_of(getattr(retry, "maxInterval", None)),
            min_interval=seconds_of(getattr(retry, "minInterval", None)) or 0.0,
            factor=getattr(retry, "delayFactor", None) or 2.0,
            warning_on_retry=retry.warningOnRetry,
            retry_permanent_errors=getattr(retry, "retryPermanentErrors", False),
        )

    def retries(self, permanent: bool) -> bool:
        """Whether a failure of this kind may be retried at all (a permanent one only when the retry says so)."""
        return self.retry_permanent_errors or not permanent

    def delay_before(self, attempt: int, elapsed: float, unbounded: bool = False) -> float | None:
        """Seconds to wait before `attempt` (2, 3, …), `elapsed` seconds after the first one started; None when no
        attempt is left. A policy with neither maxAttempts nor maxDuration retries only when `unbounded`."""
        if self.kind is None:
            return None
        if self.max_attempts is not None and attempt > self.max_attempts:
            return None
        if self.max_attempts is None and self.max_duration is None and not unbounded:
            return None
        if self.kind == "constant":
            delay = self.interval
        elif self.kind == "exponential":
            delay = self.interval * (self.factor ** (attempt - 2))
            if self.max_interval is not None:
                delay = min(delay, self.max_interval)
        else:
            delay = random.uniform(self.min_interval, self.max_interval or self.min_interval)
        if self.max_duration is not None and elapsed + delay > self.max_duration:
            return None
        return delay


def effective_retry(task: Task, inherited: Any, flow_retry: Any) -> Any:
    """The `retry` block that applies to a failure of `task`: its own, else the nearest enclosing flowable's
    (`inherited`), else the flow's; None when none has one."""
    if task.retry is not None:
        return task.retry
    return inherited if inherited is not None else flow_retry


def creates_new_execution(retry: Any) -> bool:
    """Whether the retry block runs the flow again as a new execution (CREATE_NEW_EXECUTION)."""
    return retry is not None and retry.behavior == RetryBehavior.CREATE_NEW_EXECUTION
