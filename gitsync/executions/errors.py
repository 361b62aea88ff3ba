"""The error the executions package raises for a request it cannot honour."""

from __future__ import annotations

from gitsync.errors import GitSyncError


class RunError(GitSyncError):
    """An execution cannot be created or acted on; the message says why."""


class UnknownFlow(RunError):
    """The flow to run is not active: never synced, or removed by a commit (the API answers 404)."""
