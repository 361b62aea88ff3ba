"""gitsync's exception tree. Every error a user can see is a `GitSyncError`: the command line prints its message
(exit 2, or 1 where DESIGN.md says so) and never a traceback; the HTTP API answers it as a 4xx with the message.
Foreign errors (dulwich, sqlite3, httpx, pydantic, PyYAML) are translated where they enter, with `raise … from`.

    GitSyncError                      runner/errors.py: the root, in the innermost package so all share it
    ├── ConfigError                   settings that cannot work (bad file, overlapping namespaces, an executor
    │   │                             that is not built, a secrets file that cannot be read)
    │   └── ProviderUnavailable       gitsync/hosts: a source's `status:` block names no usable provider
    ├── FetchError                    gitsync/git/fetch: the remote cannot be read (unreachable, credentials,
    │                                 unknown branch); credentials are redacted from the message
    ├── GitReadError                  gitsync/git/trees: a local repository or revision cannot be read
    ├── SourceError                   gitsync/flows/yaml_source: a flow file's bytes cannot become data (size,
    │                                 encoding, YAML syntax, duplicate keys); the loader turns it into a Problem
    ├── StateError                    gitsync/state: the SQLite state cannot be opened, read or written
    ├── HostError                     gitsync/hosts: the git host refused or failed a request (`permanent`,
    │                                 `retry_after`); the status sender retries or gives up with the reason
    ├── WebhookError                  gitsync/hosts/webhooks: a delivery that is refused (answered 4xx)
    │   ├── SignatureError            the delivery does not prove it knows the source's secret
    │   └── PayloadError              the body is not an event we can read
    ├── RunError                      gitsync/executions: an execution cannot be created or acted on
    │   └── UnknownFlow               the flow to run is not active (the API answers 404)
    ├── NotFound                      gitsync/views: what an API request or a page names does not exist (404)
    ├── QueryError                    gitsync/http/queries: query parameters that do not fit (400)
    ├── OwnerConflict                 gitsync/executions/ownership, gitsync/daemon: another process already
    │                                 owns what this one needs (the database's daemon, the HTTP port)
    ├── UsageError                    gitsync/cli: a command called wrongly (a missing flow, a malformed
    │                                 --input, a folder of several flows for --file): exit 2, nothing touched
    ├── RegistryError                 runner/registry: a plugin is broken, or two claim one type name
    ├── InputError                    runner/inputs: inputs that do not fit the flow, each named
    ├── CronError                     runner/cron: a cron expression that does not parse, the field named
    ├── ConditionError                gitsync/schedule/conditions: a Schedule trigger's condition or `when`
    │                                 cannot judge a fire time; that fire is recorded FAILED with the reason
    ├── RenderError                   runner/expressions: an expression failed; shown as the task's failure
    ├── ExpressionError               runner/errors: a filter, function, date or jq program refused its value
    └── TaskFailed                    runner/api: a task failed (message masked, outputs kept); the engine
        └── TaskKilled                records it on the task run, it never reaches the command line

Flow problems are not exceptions: the loader collects every one as a `Problem` (file, line, column, reason).
Some exceptions are signals, not errors: `runner.signals.ExitExecution` (the Exit task), the engine's
`ExitSignal` that carries it through the tree, and Jinja's undefined-variable error that becomes a `RenderError`;
none reaches a user as such.
"""

from __future__ import annotations

from runner.errors import ExpressionError, GitSyncError


class ConfigError(GitSyncError):
    """Settings that cannot work; the message names the key or file and what would work."""


class FetchError(GitSyncError):
    """The remote cannot be read; the message says why and never holds a credential."""


class StateError(GitSyncError):
    """The SQLite state cannot be opened, read or written."""


class OwnerConflict(GitSyncError):
    """Another live process owns what this one needs; the message names that process (or the port)."""


class UsageError(GitSyncError):
    """The command line was called wrongly; the command exits 2 before it touches anything."""


__all__ = ["ConfigError", "ExpressionError", "FetchError", "GitSyncError", "OwnerConflict", "StateError", "UsageError"]
