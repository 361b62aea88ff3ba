"""Why a view cannot be built: the request names nothing that exists."""

from __future__ import annotations

from gitsync.errors import GitSyncError


class NotFound(GitSyncError, LookupError):
    """What a request names does not exist; the message says what was looked for (answered 404)."""
