"""Execution and task-run states (KESTRA_SPEC §12) with the predicates the engine needs."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class State(StrEnum):
    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_failure(self) -> bool:
        """A state that fails its parent (unless allowFailure turns it into a warning)."""
        return self in (State.FAILED, State.KILLED, State.CANCELLED)

    @property
    def is_active(self) -> bool:
        return not self.is_terminal


_TERMINAL = frozenset(
    {State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.RETRIED, State.SKIPPED}
)
TERMINAL_STATES: tuple[State, ...] = tuple(state for state in State if state.is_terminal)
"""Every state an execution or task run ends in, in declaration order (for SQL `IN` lists)."""
ACTIVE_STATES: tuple[State, ...] = tuple(state for state in State if state.is_active)
"""Every state of an execution or task run that has not ended yet."""
_RANK = {State.KILLED: 4, State.FAILED: 3, State.CANCELLED: 3, State.WARNING: 1}


def combine(states: Iterable[State]) -> State:
    """The state of a parent from its children's: KILLED > FAILED > WARNING > SUCCESS (SKIPPED counts as success)."""
    worst = State.SUCCESS
    for state in states:
        if _RANK.get(state, 0) > _RANK.get(worst, 0):
            worst = state
    return worst
