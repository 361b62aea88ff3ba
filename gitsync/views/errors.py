"""Why a view cannot be built: the request names nothing that exists, or a cursor that is not ours."""

from __future__ import annotations

from gitsync.errors import GitSyncError


class NotFound(GitSyncError, LookupError):
    """What a request names does not exist; the message says what was looked for (answered 404)."""


class CursorError(GitSyncError, ValueError):
    """A cursor that this API did not give, or gave for another list (answered 400)."""
