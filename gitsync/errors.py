"""gitsync's own exceptions; foreign errors are translated at the boundary with `raise … from exc`.

    GitSyncError
    ├── ConfigError   settings that cannot work (bad file, overlapping namespaces)
    ├── FetchError    the remote cannot be read (unreachable, wrong credentials, unknown branch)
    └── StateError    the SQLite state cannot be read or written

Flow problems are not exceptions: the loader collects them as `Problem` values.
"""


class GitSyncError(Exception):
    """Base of every error gitsync raises on purpose."""


class ConfigError(GitSyncError):
    pass


class FetchError(GitSyncError):
    pass


class StateError(GitSyncError):
    pass
