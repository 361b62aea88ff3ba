"""The flow's `sla` over one execution (Kestra 0.20+): MAX_DURATION and EXECUTION_ASSERTION, with their behavior.

A MAX_DURATION SLA is violated when the execution is still running `duration` after it was created; an
EXECUTION_ASSERTION one when its `assert` expression renders falsy, checked when the execution starts and after
each task ends. A violation is logged (`SLA 'id' violated: …`) and adds the SLA's `labels`; its `behavior` then
FAILs or CANCELs the execution (the running tasks are killed) or does nothing more (NONE). As in Kestra, only the
first violation that ends the execution decides its state; each SLA is violated at most once.

The watch owns the engine's stop event: a kill of the execution (the event the control plane gave) sets it, and
so does a violation that ends the execution. It is polled like the tasks' results (`POLL_SECONDS`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from runner.api import TaskFailed
from runner.durations import format_duration
from runner.flow import Flow, Sla
from runner.states import State
from runner.truthy import truthy

POLL_SECONDS = 0.05
_ENDS = {"FAIL": State.FAILED, "CANCEL": State.CANCELLED}

Log = Callable[[str, str], None]
"""(level, message) of the execution itself (no task run)."""
AddLabels = Callable[[Mapping[str, str]], None]
Evaluate = Callable[[str], Any]
"""The value of an expression over the execution's variables as they stand (raises TaskFailed)."""


class SlaWatch:
    """The SLAs of one execution while it runs."""

    def __init__(
        self, flow: Flow, created_at: datetime, killed: threading.Event, log: Log, add_labels: AddLabels
    ) -> None:
        self.slas = list(flow.sla or [])
        self.killed = killed
        self.stop = threading.Event() if self.slas else killed
        """Set when the execution must stop: killed, or ended by a violation."""
        self.ending: tuple[State, str] | None = None
        """The state and error of the execution once a violation ended it."""
        self._log = log
        self._add_labels = add_labels
        self._lock = threading.RLock()
        self._violated: set[int] = set()
        self._unreadable: set[tuple[int, str]] = set()
        self._done = threading.Event()
        self._deadlines = [
            (_monotonic_at(created_at, sla.duration.total_seconds()), i, sla)
            for i, sla in enumerate(self.slas)
            if sla.type == "MAX_DURATION" and sla.duration is not None
        ]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (nothing to watch without SLAs)."""
        if self.slas:
            self._thread = threading.Thread(target=self._watch, daemon=True, name="sla")
            self._thread.start()

    def finish(self) -> None:
        """The execution's tasks are done: nothing is violated any more."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def check_assertions(self, evaluate: Evaluate) -> None:
        """Check each EXECUTION_ASSERTION SLA not violated yet; one whose expression fails to render is skipped
        (said once per message) and checked again next time."""
        with self._lock:  # Parallel branches end at the same time
            for i, sla in enumerate(self.slas):
                if sla.type != "EXECUTION_ASSERTION" or not sla.assert_ or i in self._violated or self._done.is_set():
                    continue
                try:
                    holds = truthy(evaluate(sla.assert_))
                except TaskFailed as exc:
                    if (i, exc.message) not in self._unreadable:
                        self._unreadable.add((i, exc.message))
                        self._log("WARN", f"SLA '{sla.id}' was not checked: its assert failed to render: {exc.message}")
                    continue
                if not holds:
                    self._violate(i, sla, f"its assertion {sla.assert_} is false")

    def _watch(self) -> None:
        while not self._done.is_set():
            if self.killed.wait(POLL_SECONDS):
                self.stop.set()
                return
            now = time.monotonic()
            for deadline, i, sla in self._deadlines:
                if now >= deadline and i not in self._violated and not self._done.is_set():
                    self._violate(i, sla, f"the execution ran longer than its maximum duration of {_span(sla)}")

    def _violate(self, index: int, sla: Sla, reason: str) -> None:
        with self._lock:
            if index in self._violated:
                return
            self._violated.add(index)
            ends = _ENDS.get(sla.behavior)
            first = ends is not None and self.ending is None
            message = f"SLA '{sla.id}' violated: {reason}"
            if first and ends is not None:
                self.ending = (ends, f"{message}, so the execution ends {ends.value} (behavior: {sla.behavior})")
        self._log("WARN", message)
        if sla.labels:
            self._add_labels(sla.labels)
        if first and self.ending is not None:
            self._log("ERROR", self.ending[1])
            self.stop.set()


def _monotonic_at(created_at: datetime, seconds: float) -> float:
    """The monotonic clock's reading `seconds` after `created_at` (wall clock)."""
    moment = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    elapsed = (datetime.now(UTC) - moment).total_seconds()
    return time.monotonic() - max(elapsed, 0.0) + seconds


def _span(sla: Sla) -> str:
    assert sla.duration is not None
    return format_duration(sla.duration)
