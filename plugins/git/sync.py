"""Kestra's git sync and push tasks: `SyncFlows`, `PushFlows`, `SyncNamespaceFiles`, `PushNamespaceFiles`, `Sync`.

In Kestra a flow copies flows or namespace files between a git repository and Kestra's database. In gitsync the
repository is already the source of truth: a source in gitsync.yaml syncs the flows (and the `_files/` namespace
files beside them) at every commit, with a plan and a commit status. These tasks would do that a second time, so
they validate with a warning saying what to do instead, and running one is a no-op that logs the same. Their
properties are Kestra's, so that a flow written for Kestra still validates.
"""

from __future__ import annotations

from typing import Any, ClassVar

from runner.api import RunContext
from runner.plugin import Task
from runner.types import Dyn

_FLOWS = (
    "gitsync syncs flows from git itself: every commit of a source's repository is validated, planned and "
    "applied. Delete this task and point a source of gitsync.yaml (`sources:` repo, branch, path) at this "
    "repository instead; running it does nothing"
)
_FILES = (
    "gitsync reads namespace files from git itself, versioned with each commit (the `_files/<namespace>/` folder "
    "beside a source's flows). Delete this task and commit the files there instead; running it does nothing"
)
_PUSH_FLOWS = (
    "gitsync's flows already live in git: they are changed by commits to the source's repository, never pushed "
    "from a running flow. Delete this task and commit the flow files instead; running it does nothing"
)
_PUSH_FILES = (
    "gitsync's namespace files already live in git (`_files/<namespace>/` beside a source's flows): change them "
    "by commits, not from a running flow. Delete this task and commit the files instead; running it does nothing"
)


class _Replaced(Task):
    """A Kestra git task whose work gitsync does itself: `reason` is its warning and its log line."""

    runs_inline: ClassVar[bool] = True  # only logs: runs on the engine's thread
    reason: ClassVar[str] = _FLOWS

    url: str
    """Repository URL (https:// or ssh)."""
    branch: str | None = None
    """Branch to sync from or push to (Kestra: main)."""
    gitDirectory: str | None = None
    """Folder of the repository with the flows or files."""
    username: str | None = None
    """User for https authentication."""
    password: str | None = None
    """Password or personal access token."""
    privateKey: str | None = None
    """PEM private key for ssh URLs."""
    passphrase: str | None = None
    """Passphrase of privateKey."""
    trustedCaPemPath: str | None = None
    """CA certificate file for https."""
    noProxy: Dyn[bool] | None = None
    """Bypass the proxy configuration."""
    connectTimeout: Dyn[int] | None = None
    """Connection timeout in milliseconds."""
    readTimeout: Dyn[int] | None = None
    """Read timeout in milliseconds."""
    gitConfig: dict[str, Any] | None = None
    """git configuration entries."""
    kestraUrl: str | None = None
    """Kestra API URL the task would write to."""
    auth: dict[str, Any] | None = None
    """Kestra API authentication (username, password, auto)."""
    cloneSubmodules: Dyn[bool] | None = None
    """Also clone submodules."""
    dryRun: Dyn[bool] = False
    """Only show what would change."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.inert = {**Task.inert, "url": cls.reason}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ctx.logger.warn(f"{self.type_name.rsplit('.', 1)[-1]} did nothing: {self.reason}")
        return {}


class _SyncTask(_Replaced):
    delete: Dyn[bool] = False
    """Delete what is not in git."""
    failOnMissingDirectory: Dyn[bool] = True
    """Fail when gitDirectory does not exist."""


class _PushTask(_Replaced):
    commitMessage: str | None = None
    """Message of the commit pushed."""
    authorEmail: str | None = None
    """Email of the commit's author."""
    authorName: str | None = None
    """Name of the commit's author."""
    delete: Dyn[bool] = True
    """Delete from git what is no longer in Kestra."""


class SyncFlows(_SyncTask):
    """Kestra: sync flows from git into a namespace. gitsync: a no-op with a warning (a source does this)."""

    type_name: ClassVar[str] = "io.kestra.plugin.git.SyncFlows"
    reason: ClassVar[str] = _FLOWS

    targetNamespace: str | None = None
    """Namespace the flows are synced to."""
    includeChildNamespaces: Dyn[bool] = False
    """Also sync the child namespaces' flows (subfolders)."""
    ignoreInvalidFlows: Dyn[bool] = False
    """Skip invalid flows instead of failing."""


class SyncNamespaceFiles(_SyncTask):
    """Kestra: sync namespace files from git. gitsync: a no-op with a warning (files are read from git)."""

    type_name: ClassVar[str] = "io.kestra.plugin.git.SyncNamespaceFiles"
    reason: ClassVar[str] = _FILES

    namespace: str | None = None
    """Namespace the files are synced to (the flow's own by default)."""


class PushFlows(_PushTask):
    """Kestra: commit and push flows to git. gitsync: a no-op with a warning (flows are changed by commits)."""

    type_name: ClassVar[str] = "io.kestra.plugin.git.PushFlows"
    reason: ClassVar[str] = _PUSH_FLOWS

    sourceNamespace: str | None = None
    """Namespace whose flows are pushed (the flow's own by default)."""
    targetNamespace: str | None = None
    """Namespace written into the pushed flows."""
    flows: Any = None
    """Flow ids or glob patterns to push."""
    includeChildNamespaces: Dyn[bool] = False
    """Also push the child namespaces' flows."""


class PushNamespaceFiles(_PushTask):
    """Kestra: commit and push namespace files to git. gitsync: a no-op with a warning."""

    type_name: ClassVar[str] = "io.kestra.plugin.git.PushNamespaceFiles"
    reason: ClassVar[str] = _PUSH_FILES

    namespace: str | None = None
    """Namespace whose files are pushed (the flow's own by default)."""
    files: Any = None
    """Paths or glob patterns of the files to push."""
    errorOnMissing: Dyn[bool] = False
    """Fail when a file named is missing."""


class Sync(_Replaced):
    """Kestra's older task syncing flows and namespace files from git. gitsync: a no-op with a warning."""

    type_name: ClassVar[str] = "io.kestra.plugin.git.Sync"
    reason: ClassVar[str] = (
        "gitsync syncs flows and namespace files from git itself, at every commit of a source's repository. "
        "Delete this task and point a source of gitsync.yaml (`sources:` repo, branch, path) at this repository "
        "instead; running it does nothing"
    )

    namespaceFilesDirectory: str | None = None
    """Folder of the repository with the namespace files."""
