"""`io.kestra.plugin.fs.sftp.Trigger`: every `interval`, the new files of a remote folder start an execution, whose
`trigger.files` lists them (Kestra's File entries, `path` being the downloaded copy's kestra:/// URI, with their
`changeType`).

Each file fires exactly once, even when several pollers watch the same folder, because each file is claimed by one
atomic step on the server or in the key-value store before it is handed out:

- MOVE: the file is renamed into `moveDirectory` (OpenSSH's posix-rename), then downloaded from there; a poller whose
  rename finds the file gone lost it to another one, and leaves it.
- DELETE: the file is downloaded, then removed; only the poller whose remove succeeds fires with it.
- NONE: the file stays; its version (modification time, size, path) is claimed in the key-value store
  (`stateKey`, insert-if-absent), so one version fires once, and `on` says whether new files, changed ones or both
  fire.

The daemon polls it every `interval` (`gitsync/schedule/polling`, as a `runner.polling.ClaimingTrigger`).
`claim(ctx)` is one poll: its properties rendered, `ctx` the run context of the execution it would
start (its storage receives the downloaded files, its key-value store keeps the NONE state). It returns the trigger
variables, or None when nothing is new.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from plugins.core._props import as_bool, as_seconds
from plugins.fs.sftp.common import Action, Gone, Remote, SftpLogin, Sort, limit, moved_to, sort_files
from plugins.fs.sftp.tasks import fetch, store
from runner.api import MISSING, RunContext, TaskFailed
from runner.polling import ClaimingTrigger
from runner.types import Duration, Dyn, DynDuration

On = Literal["CREATE", "UPDATE", "CREATE_OR_UPDATE"]


class Trigger(SftpLogin, ClaimingTrigger):
    """Start an execution for the new files of a remote folder, polled every `interval`."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.sftp.Trigger"

    interval: Duration = timedelta(seconds=60)
    """How often the folder is polled."""
    from_: str = Field(alias="from")
    """The remote folder to watch."""
    action: Dyn[Action]
    """What to do with each file once it fired: MOVE (to moveDirectory), DELETE, or NONE (it stays; the
    key-value store remembers which versions fired)."""
    moveDirectory: str | None = None
    """The remote folder processed files are moved to (action MOVE)."""
    regExp: str | None = None
    """Only files whose full path matches this regular expression."""
    recursive: Dyn[bool] = False
    """Watch the sub-folders too."""
    maxFiles: Dyn[int] = 25
    """At most this many files per execution; the others fire at the next poll."""
    sort: Dyn[Sort] = "NONE"
    """The order files are handed out: NONE, LAST_MODIFIED_ASC/DESC, NAME_ASC/DESC."""
    on: Dyn[On] = "CREATE_OR_UPDATE"
    """With action NONE: fire for new files (CREATE), changed ones (UPDATE) or both."""
    stateKey: str | None = None
    """With action NONE: the key-value store prefix of what fired (the flow's id and the trigger's by default)."""
    stateTtl: DynDuration | None = None
    """With action NONE: how long a fired version is remembered (forever by default)."""

    @model_validator(mode="after")
    def _move_has_a_folder(self) -> Trigger:
        if self.action == "MOVE" and not self.moveDirectory:
            raise ValueError("action MOVE needs moveDirectory, the folder processed files are moved to")
        return self

    def claim(self, ctx: RunContext) -> dict[str, Any] | None:
        """One poll: the trigger variables (`files`) of the files this poller claimed, or None."""
        action = str(self.action)
        with self.session(ctx) as remote:
            try:
                found = remote.files(self.from_, self.regExp, as_bool(self.recursive, "recursive"))
            except TaskFailed as exc:
                if "does not exist" in exc.message:
                    ctx.logger.debug(f"nothing to poll yet: {exc.message}")
                    return None
                raise
            pending = sort_files(found, str(self.sort))
            if action == "NONE":
                pending = [entry for entry in pending if self._is_new(ctx, entry)]
            fired = []
            for entry in limit(ctx, pending, self.maxFiles):
                claimed = self._claim(ctx, remote, entry, action)
                if claimed is not None:
                    fired.append(claimed)
        if not fired:
            return None
        ctx.logger.info(f"{len(fired)} new file(s) in {remote.uri(self.from_)}")
        return {"files": fired}

    def _claim(self, ctx: RunContext, remote: Remote, entry: dict[str, Any], action: str) -> dict[str, Any] | None:
        """Take one file for this poll, downloaded; None when another poller took it first."""
        path = str(entry["path"])
        if action == "MOVE":
            target = moved_to(self.moveDirectory, path)
            remote.makedirs(str(self.moveDirectory))
            if not remote.rename(path, target, overwrite=True):
                return None
            try:
                local = fetch(ctx, remote, target)
            except TaskFailed:
                remote.rename(target, path, overwrite=False)  # put it back for the next poll
                raise
            change = "CREATE"
        elif action == "DELETE":
            try:
                local = fetch(ctx, remote, path)
            except Gone:  # another poller removed it first
                return None
            if not remote.remove(path):
                Path(local).unlink(missing_ok=True)
                return None
            change = "CREATE"
        else:
            version_change = self._claim_version(ctx, entry)
            if version_change is None:
                return None
            change = version_change
            local = fetch(ctx, remote, path)
        return {**entry, "path": store(ctx, local, path), "changeType": change}

    # action NONE: what fired is kept in the key-value store

    def _keys(self, ctx: RunContext, entry: dict[str, Any]) -> tuple[str, str, str]:
        base = self.stateKey or f"{ctx.flow_id}.{self.id}.sftp-trigger"
        version = f"{entry['updatedDate']}_{entry['size']}_{entry['path']}"
        path_digest = hashlib.sha256(str(entry["path"]).encode()).hexdigest()[:32]
        version_digest = hashlib.sha256(version.encode()).hexdigest()[:32]
        return f"{base}.seen.{path_digest}", f"{base}.fired.{version_digest}", version

    def _ttl(self) -> float | None:
        return as_seconds(self.stateTtl, "stateTtl")

    def _is_new(self, ctx: RunContext, entry: dict[str, Any]) -> bool:
        seen_key, _, version = self._keys(ctx, entry)
        seen = ctx.kv.get(ctx.namespace, seen_key)
        if seen is not MISSING and seen == version:
            return False
        on = str(self.on)
        if (on == "CREATE" and seen is not MISSING) or (on == "UPDATE" and seen is MISSING):
            # not a change this trigger fires for; remembered so that a later change is judged against it
            ctx.kv.set(ctx.namespace, seen_key, version, ttl_seconds=self._ttl())
            return False
        return True

    def _claim_version(self, ctx: RunContext, entry: dict[str, Any]) -> str | None:
        """CREATE or UPDATE when this poller claimed the file's version; None when it fired already."""
        seen_key, fired_key, version = self._keys(ctx, entry)
        seen = ctx.kv.get(ctx.namespace, seen_key)
        try:
            ctx.kv.set(ctx.namespace, fired_key, version, ttl_seconds=self._ttl(), overwrite=False)
        except TaskFailed:  # the store's KeyExists: another poll fired this version
            return None
        ctx.kv.set(ctx.namespace, seen_key, version, ttl_seconds=self._ttl())
        return "CREATE" if seen is MISSING else "UPDATE"
