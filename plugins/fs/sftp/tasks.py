"""The SFTP tasks (`io.kestra.plugin.fs.sftp.*`, paramiko in the `ssh` extra): Upload, Uploads, Download, Downloads,
List, Delete and Move, with Kestra's properties and outputs."""

from __future__ import annotations

import hashlib
import json
import posixpath
import stat
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from plugins.core._props import as_bool
from plugins.fs.sftp.common import Action, Remote, SftpLogin, Sort, compile_regexp, limit, logical, moved_to, sort_files
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

Algorithm = Literal["MD5", "SHA_1", "SHA_256", "SHA_512"]
DIGESTS = {"MD5": "md5", "SHA_1": "sha1", "SHA_256": "sha256", "SHA_512": "sha512"}


def checksum(path: Path, algorithm: str) -> str:
    digest = hashlib.new(DIGESTS[algorithm])
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(ctx: RunContext, remote: Remote, path: str) -> Path:
    """Download one remote file into the task's working directory."""
    with tempfile.NamedTemporaryFile(dir=ctx.workdir, suffix=posixpath.splitext(path)[1], delete=False) as handle:
        local = Path(handle.name)
    remote.download(path, local)
    return local


def store(ctx: RunContext, local: Path, path: str) -> str:
    """Put a downloaded file into the execution's storage under its remote name; its kestra:/// URI."""
    uri = ctx.storage.put(local, posixpath.basename(path) or local.name)
    local.unlink(missing_ok=True)
    return uri


def apply_action(ctx: RunContext, remote: Remote, files: list[dict[str, Any]], action: str, folder: str | None) -> None:
    """MOVE (into `folder`, replacing a file of the same name) or DELETE each processed file; NONE leaves them."""
    if action == "MOVE":
        remote.makedirs(folder or "")
    for entry in files:
        source = str(entry["source"])
        if action == "DELETE":
            remote.remove(source)
        elif action == "MOVE":
            remote.rename(source, moved_to(folder, source), overwrite=True)
        ctx.logger.debug(f"{action.lower()} {remote.uri(source)}")


class SftpTask(SftpLogin, Task):
    """A task over one SFTP session."""


class Upload(SftpTask):
    """Upload a file of the execution's storage to the SFTP server."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.sftp.Upload"

    from_: str = Field(alias="from")
    """The file to upload: a kestra:/// URI (an input or another task's output)."""
    to: str | None = None
    """The remote path (a folder when it ends with '/'); the file's name in the user's home folder when unset."""
    overwrite: Dyn[bool] = True
    """Replace a remote file that is already there."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with self.session(ctx) as remote:
            return {
                "from": self.from_,
                "to": upload(ctx, remote, self.from_, self.to, as_bool(self.overwrite, "overwrite")),
            }


def upload(ctx: RunContext, remote: Remote, source: str, to: str | None, overwrite: bool) -> str:
    if not source.startswith("kestra://"):
        raise TaskFailed(
            f"from must be a file of the execution's storage (kestra:///…), got {source!r}", permanent=True
        )
    local = ctx.storage.path(source)
    name = posixpath.basename(source)
    target = logical(to) if to else "/" + name
    if (to or "").endswith("/") or (to and remote.is_dir(target)):
        target = posixpath.join(target, name)
    found = remote.stat(target)
    if found is not None and not overwrite:
        raise TaskFailed(
            f"the file {remote.uri(target)} already exists and overwrite is false: set overwrite: true to replace it",
            permanent=True,
        )
    remote.makedirs(posixpath.dirname(target))
    try:
        remote.sftp.put(str(local), remote.real(target))
    except OSError as exc:
        raise remote.error("upload to", target, exc) from None
    ctx.logger.debug(f"uploaded {source} to {remote.uri(target)}")
    return remote.uri(target)


class Uploads(SftpTask):
    """Upload several files of the execution's storage into one remote folder."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.sftp.Uploads"

    from_: Any = Field(alias="from")
    """The files: a kestra:/// URI, a list of them, a map of remote file name to URI, or the JSON text of either."""
    to: str
    """The remote folder."""
    regExp: str | None = None
    """Only the URIs that fully match this regular expression are uploaded."""
    maxFiles: Dyn[int] = 25
    """At most this many files are uploaded (a warning says so when there are more)."""
    overwrite: Dyn[bool] = True
    """Replace remote files that are already there."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        pairs = _sources(self.from_)
        pattern = compile_regexp(self.regExp)
        if pattern is not None:
            pairs = [(name, uri) for name, uri in pairs if pattern.fullmatch(uri)]
        kept = limit(ctx, [{"name": name, "uri": uri} for name, uri in pairs], self.maxFiles)
        overwrite = as_bool(self.overwrite, "overwrite")
        folder = logical(self.to)
        with self.session(ctx) as remote:
            files = [
                upload(ctx, remote, uri, posixpath.join(folder, name or posixpath.basename(uri)), overwrite)
                for name, uri in ((entry["name"], entry["uri"]) for entry in kept)
            ]
        return {"files": files}


def _sources(value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):
            try:
                value = json.loads(text)
            except ValueError:
                raise TaskFailed(
                    f"from is not the JSON list or map it looks like: {text[:80]!r}", permanent=True
                ) from None
        else:
            return [(None, text)]
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [(None, str(v)) for v in value]
    raise TaskFailed("from must be a kestra:/// URI, a list of them, or a map of file name to URI", permanent=True)


class Download(SftpTask):
    """Download a remote file into the execution's storage."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.sftp.Download"

    from_: str = Field(alias="from")
    """The remote file."""
    validateChecksum: Dyn[bool] = False
    """Fail when the file's checksum is not checksumExpected."""
    checksumExpected: str | None = None
    """The checksum the file must have (hexadecimal), with validateChecksum."""
    checksumAlgorithm: Dyn[Algorithm] = "SHA_256"
    """MD5, SHA_1 (both weak), SHA_256 or SHA_512."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        algorithm = str(self.checksumAlgorithm)
        if algorithm in ("MD5", "SHA_1"):
            ctx.logger.warn(f"checksumAlgorithm {algorithm} is weak: use SHA_256 or SHA_512 to check integrity")
        with self.session(ctx) as remote:
            local = fetch(ctx, remote, self.from_)
            uri_from = remote.uri(self.from_)
        digest = checksum(local, algorithm)
        if as_bool(self.validateChecksum, "validateChecksum"):
            if not self.checksumExpected or not self.checksumExpected.strip():
                raise TaskFailed("validateChecksum is true but no checksumExpected is given", permanent=True)
            if digest.lower() != self.checksumExpected.strip().lower():
                raise TaskFailed(
                    f"the checksum of {uri_from} is {digest} ({algorithm}), not the expected {self.checksumExpected}",
                    permanent=True,
                )
        return {"from": uri_from, "to": store(ctx, local, self.from_), "checksum": digest}


class Downloads(SftpTask):
    """Download the files of a remote folder, then move or delete them there."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.sftp.Downloads"

    from_: str = Field(alias="from")
    """The remote folder."""
    action: Dyn[Action] | None = None
    """What to do with each downloaded file: MOVE (to moveDirectory), DELETE or NONE."""
    moveDirectory: str | None = None
    """The remote folder the downloaded files are moved to (action MOVE)."""
    regExp: str | None = None
    """Only files whose full path matches this regular expression."""
    recursive: Dyn[bool] = False
    """Include the files of sub-folders."""
    maxFiles: Dyn[int] = 25
    """At most this many files (a warning says so when there are more)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with self.session(ctx) as remote:
            found = remote.files(self.from_, self.regExp, as_bool(self.recursive, "recursive"))
            found = limit(ctx, found, self.maxFiles)
            done = []
            for entry in found:
                local = fetch(ctx, remote, entry["path"])
                done.append({**entry, "source": entry["path"], "path": store(ctx, local, entry["path"])})
            if self.action:
                apply_action(ctx, remote, done, str(self.action), self.moveDirectory)
        files = [{k: v for k, v in entry.items() if k != "source"} for entry in done]
        return {"files": files, "outputFiles": {f["name"]: f["path"] for f in files}}


class List(SftpTask):
    """List the files of a remote folder."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.sftp.List"

    from_: str = Field(alias="from")
    """The remote folder."""
    regExp: str | None = None
    """Only files whose full path matches this regular expression."""
    recursive: Dyn[bool] = False
    """Include the files of sub-folders."""
    maxFiles: Dyn[int] = 25
    """At most this many files (a warning says so when there are more)."""
    sort: Dyn[Sort] = "NONE"
    """NONE (the server's order), LAST_MODIFIED_ASC/DESC or NAME_ASC/DESC."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with self.session(ctx) as remote:
            found = remote.files(self.from_, self.regExp, as_bool(self.recursive, "recursive"))
        return {"files": limit(ctx, sort_files(found, str(self.sort)), self.maxFiles)}


class Delete(SftpTask):
    """Delete a remote file (or, with regExp, the matching files of a folder)."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.sftp.Delete"

    uri: str
    """The remote file (or folder, with regExp or recursive)."""
    errorOnMissing: Dyn[bool] = False
    """Fail when there is nothing at uri."""
    recursive: Dyn[bool] = False
    """Delete a folder with everything in it (or, with regExp, match in sub-folders too)."""
    regExp: str | None = None
    """uri is a folder: delete its files whose full path matches this regular expression."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        missing_fails = as_bool(self.errorOnMissing, "errorOnMissing")
        recursive = as_bool(self.recursive, "recursive")
        with self.session(ctx) as remote:
            found = remote.stat(self.uri)
            shown = remote.uri(self.uri)
            if found is None:
                if missing_fails:
                    raise TaskFailed(f"there is nothing to delete at {shown}", permanent=True)
                ctx.logger.debug(f"nothing to delete at {shown}")
                return {"uri": shown, "deleted": False, "uris": []}
            if self.regExp:
                matched = remote.files(self.uri, self.regExp, recursive)
                if matched:
                    ctx.logger.warn(f"Deleting {len(matched)} file(s) matching regExp {self.regExp!r} under {shown}")
                uris = [remote.uri(f["path"]) for f in matched if remote.remove(f["path"])]
                return {"uri": shown, "deleted": bool(uris), "uris": uris}
            if remote.is_dir(self.uri):
                if not recursive:
                    raise TaskFailed(f"{shown} is a folder: set recursive: true to delete it with its content",
                                     permanent=True)  # fmt: skip
                _remove_tree(remote, logical(self.uri))
                return {"uri": shown, "deleted": True, "uris": []}
            return {"uri": shown, "deleted": remote.remove(self.uri), "uris": []}


def _remove_tree(remote: Remote, folder: str) -> None:
    for attrs in remote.sftp.listdir_attr(remote.real(folder)):
        path = posixpath.join(folder, attrs.filename)
        if remote.is_dir(path) and not _is_link(attrs):
            _remove_tree(remote, path)
        else:
            remote.remove(path)
    try:
        remote.sftp.rmdir(remote.real(folder))
    except OSError as exc:
        raise remote.error("delete the folder", folder, exc) from None


def _is_link(attrs: Any) -> bool:
    return stat.S_ISLNK(attrs.st_mode or 0)


class Move(SftpTask):
    """Move (rename) a remote file."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.sftp.Move"

    from_: str = Field(alias="from")
    """The remote file."""
    to: str
    """Where it goes: a path, or a folder when it ends with '/' or is one (the file keeps its name)."""
    overwrite: Dyn[bool] = False
    """Replace a file that is already at `to`."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with self.session(ctx) as remote:
            if remote.stat(self.from_) is None:
                raise TaskFailed(f"the file {remote.uri(self.from_)} does not exist", permanent=True)
            target = logical(self.to)
            if self.to.endswith("/") or remote.is_dir(target):
                target = posixpath.join(target, posixpath.basename(logical(self.from_)))
            remote.makedirs(posixpath.dirname(target))
            if not remote.rename(self.from_, target, as_bool(self.overwrite, "overwrite")):
                raise TaskFailed(f"the file {remote.uri(self.from_)} disappeared before it could be moved")
            return {"from": remote.uri(self.from_), "to": remote.uri(target)}
