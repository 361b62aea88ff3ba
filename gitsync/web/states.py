"""Which colour a state is shown in: every execution, task run, sync and commit status state belongs to one family,
whose colours (`--state-<family>-bg` / `-fg`) the stylesheet declares for both themes."""

from __future__ import annotations

FAMILIES: dict[str, str] = {
    # executions and task runs (runner.states.State)
    "SUCCESS": "success",
    "WARNING": "warning",
    "FAILED": "failed",
    "KILLED": "killed",
    "KILLING": "killed",
    "CANCELLED": "killed",
    "RUNNING": "running",
    "RESTARTED": "running",
    "RETRYING": "running",
    "PAUSED": "paused",
    "CREATED": "queued",
    "QUEUED": "queued",
    "SKIPPED": "skipped",
    "RETRIED": "skipped",
    # syncs (outcome)
    "APPLIED": "success",
    "UNCHANGED": "skipped",
    "INVALID": "failed",
    "REFUSED": "failed",
    # commit statuses (the outbox's state, and what a host shows)
    "PENDING": "queued",
    "ERROR": "failed",
    "FAILURE": "failed",
    "SENT": "success",
    "GIVEN UP": "failed",
    "SUPERSEDED": "skipped",
    "CANCELED": "killed",
}
FAMILY_NAMES = ("success", "warning", "failed", "killed", "running", "paused", "queued", "skipped")


def family(state: str | None) -> str:
    """The colour family of a state, in any case; an unknown one is shown as `queued` (neutral)."""
    return FAMILIES.get((state or "").strip().upper(), "queued")


def state_class(state: str | None) -> str:
    return f"state-{family(state)}"
