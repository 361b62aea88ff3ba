"""What the SFTP tasks and the Trigger share: the login properties (Kestra's SftpInterface), one SFTP session, paths
as Kestra shows them, the listing and its file entries, and MOVE/DELETE of processed files.

Paths: with `rootDir: true` (Kestra's default) a path is read from the user's home, even one that starts with `/`
(`/in/a.csv` is `~/in/a.csv`), as Kestra's SFTP file system does; with `rootDir: false` it is absolute on the server.
Outputs show the path as the flow gave it (`sftp://host/in/a.csv`, without credentials or port, as Kestra does).
"""

from __future__ import annotations

import errno
import posixpath
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from plugins.core._props import as_bool, as_int
from plugins.fs.connection import Login, connected
from runner.api import RunContext, TaskFailed
from runner.plugin import Plugin
from runner.types import Dyn

if TYPE_CHECKING:
    import paramiko

Action = Literal["MOVE", "DELETE", "NONE"]
Sort = Literal["NONE", "LAST_MODIFIED_ASC", "LAST_MODIFIED_DESC", "NAME_ASC", "NAME_DESC"]
PROXY_FIELDS = ("proxyType", "proxyAddress", "proxyHost", "proxyPort", "proxyUser", "proxyUsername", "proxyPassword")


class Gone(TaskFailed):
    """The remote file is not there (any more)."""


class SftpLogin(Plugin):
    """Where and as whom to log in (Kestra's AbstractVfsInterface and SftpInterface), with gitsync's host key
    checking (`strictHostKeyChecking`, `knownHosts`: Kestra checks no host key for SFTP)."""

    host: str
    """The remote host."""
    port: Dyn[str] = "22"
    """The remote port."""
    username: str | None = None
    """The user to log in as."""
    password: str | None = None
    """The password (when no keyfile is given); use a secret."""
    keyfile: str | None = None
    """The private key's text (PEM, or OpenSSH format) to log in by key; use a secret."""
    passphrase: str | None = None
    """The passphrase of keyfile, when it has one."""
    rootDir: Dyn[bool] = True
    """Paths are read from the user's home directory (true), or from the server's root (false)."""
    keyExchangeAlgorithm: str | None = None
    """The one key exchange algorithm to use (e.g. diffie-hellman-group14-sha256)."""
    enableSshRsa1: Dyn[bool] = False
    """Allow the ssh-rsa (RSA with SHA-1) signatures, which are off by default."""
    strictHostKeyChecking: Dyn[Literal["yes", "no", "ask"]] = "no"
    """gitsync's addition. yes (or ask): only a host whose key knownHosts (or ~/.ssh/known_hosts) lists is
    accepted; no: an unknown host's key is accepted and its fingerprint logged. A key other than the one known for
    the host is refused either way."""
    knownHosts: str | None = None
    """gitsync's addition: known_hosts lines naming the host keys the server may show (`[host]:port ssh-ed25519
    AAAA…` for a port other than 22; `ssh-keyscan -p PORT HOST` prints them)."""
    proxyType: str | None = None
    """SOCKS5, STREAM or HTTP: not available in gitsync (a run that sets it fails saying so)."""
    proxyAddress: str | None = None
    """The proxy's address (with proxyType; not available in gitsync)."""
    proxyHost: str | None = None
    """Deprecated name of proxyAddress."""
    proxyPort: str | None = None
    """The proxy's port (with proxyType; not available in gitsync)."""
    proxyUser: str | None = None
    """Deprecated name of proxyUsername."""
    proxyUsername: str | None = None
    """The user to log in to the proxy as (not available in gitsync)."""
    proxyPassword: str | None = None
    """The proxy's password (not available in gitsync)."""

    def login(self) -> Login:
        used = [name for name in PROXY_FIELDS if getattr(self, name)]
        if used:
            raise TaskFailed(
                f"gitsync does not connect to SFTP servers through a proxy ({', '.join(used)}): reach the server "
                "directly, or run the transfer with an SSH tunnel you start outside the flow",
                permanent=True,
            )
        if not self.keyfile and not self.password:
            raise TaskFailed("SFTP needs a password or a keyfile to log in", permanent=True)
        return Login(
            task_type=self.type_name, host=self.host, port=self.port, username=self.username,
            password=None if self.keyfile else self.password, private_key=self.keyfile, passphrase=self.passphrase,
            strict=self.strictHostKeyChecking, known_hosts=self.knownHosts, rsa1=self.enableSshRsa1,
            kex=self.keyExchangeAlgorithm,
        )  # fmt: skip

    @contextmanager
    def session(self, ctx: RunContext) -> Iterator[Remote]:
        login = self.login()
        with connected(ctx, login) as client:
            try:
                sftp = client.open_sftp()
            except Exception as exc:
                raise TaskFailed(f"{login.where} has no SFTP service for this user: {exc}", permanent=True) from None
            try:
                home = sftp.normalize(".") if as_bool(self.rootDir, "rootDir") else "/"
                yield Remote(sftp, self.host, home)
            finally:
                sftp.close()


def iso(seconds: float | int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def logical(path: str) -> str:
    """A path as the flow means it: absolute, normalised (`in/a.csv` and `/in//a.csv` are `/in/a.csv`)."""
    return posixpath.normpath("/" + path.lstrip("/")) if path.strip("/") else "/"


@dataclass
class Remote:
    """One SFTP session, paths given as the flow gives them."""

    sftp: paramiko.SFTPClient
    host: str
    home: str

    def real(self, path: str) -> str:
        """The server's path of a flow's path."""
        return posixpath.join(self.home, logical(path).lstrip("/")) if self.home != "/" else logical(path)

    def uri(self, path: str) -> str:
        return f"sftp://{self.host}{logical(path)}"

    def stat(self, path: str) -> paramiko.SFTPAttributes | None:
        try:
            return self.sftp.stat(self.real(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self.error("read", path, exc) from None

    def is_dir(self, path: str) -> bool:
        found = self.stat(path)
        return found is not None and stat.S_ISDIR(found.st_mode or 0)

    def makedirs(self, folder: str) -> None:
        """Create `folder` and its missing parents (as Kestra's file system does on upload and move)."""
        parts = [p for p in logical(folder).split("/") if p]
        for i in range(1, len(parts) + 1):
            current = "/" + "/".join(parts[:i])
            if not self.is_dir(current):
                try:
                    self.sftp.mkdir(self.real(current))
                except OSError as exc:
                    if not self.is_dir(current):
                        raise self.error("create the folder", current, exc) from None

    def error(self, doing: str, path: str, exc: OSError) -> TaskFailed:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, PermissionError):
            reason = "permission denied"
        return TaskFailed(f"could not {doing} {self.uri(path)}: {reason}", permanent=isinstance(exc, PermissionError))

    def entry(self, path: str, attrs: paramiko.SFTPAttributes, link: bool = False) -> dict[str, Any]:
        """A file as Kestra's `File` output shows it."""
        mode = attrs.st_mode or 0
        return {
            "path": logical(path),
            "name": posixpath.basename(logical(path)),
            "fileType": "FOLDER" if stat.S_ISDIR(mode) else "FILE",
            "symbolicLink": link,
            "size": attrs.st_size if not stat.S_ISDIR(mode) else None,
            "userId": attrs.st_uid,
            "groupId": attrs.st_gid,
            "permissions": mode,
            "flags": getattr(attrs, "_flags", None),
            "accessDate": iso(attrs.st_atime),
            "updatedDate": iso(attrs.st_mtime),
        }

    def files(self, folder: str, reg_exp: str | None, recursive: bool) -> list[dict[str, Any]]:
        """The regular files in `folder` (and below it when `recursive`) whose path fully matches `reg_exp`."""
        pattern = compile_regexp(reg_exp)
        found: list[dict[str, Any]] = []
        pending = [logical(folder)]
        top = True
        while pending:
            current = pending.pop(0)
            try:
                children = self.sftp.listdir_attr(self.real(current))
            except FileNotFoundError:
                if top:
                    raise TaskFailed(f"the folder {self.uri(current)} does not exist") from None
                continue
            except OSError as exc:
                raise self.error("list", current, exc) from None
            top = False
            for attrs in sorted(children, key=lambda a: a.filename):
                path = posixpath.join(current, attrs.filename)
                link = stat.S_ISLNK(attrs.st_mode or 0)
                if link:
                    target = self.stat(path)
                    if target is None:
                        continue
                    attrs = target
                if stat.S_ISDIR(attrs.st_mode or 0):
                    if recursive:
                        pending.append(path)
                    continue
                if stat.S_ISREG(attrs.st_mode or 0) and (pattern is None or pattern.fullmatch(path)):
                    found.append(self.entry(path, attrs, link))
        return found

    def download(self, path: str, local: Any) -> None:
        try:
            self.sftp.get(self.real(path), str(local))
        except FileNotFoundError:
            raise Gone(f"the file {self.uri(path)} does not exist", permanent=True) from None
        except OSError as exc:
            raise self.error("download", path, exc) from None

    def remove(self, path: str) -> bool:
        """Delete one file; False when it was already gone."""
        try:
            self.sftp.remove(self.real(path))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self.error("delete", path, exc) from None
        return True

    def rename(self, source: str, target: str, overwrite: bool) -> bool:
        """Move one file, atomically on the server; False when `source` was gone (another poller took it).

        With `overwrite`, OpenSSH's posix-rename replaces a file at `target` in the same step; without it a plain
        SFTP rename refuses one (TaskFailed)."""
        if not overwrite and self.stat(target) is not None:
            raise TaskFailed(f"{self.uri(target)} already exists: set overwrite: true to replace it", permanent=True)
        try:
            if overwrite:
                self.sftp.posix_rename(self.real(source), self.real(target))
            else:
                self.sftp.rename(self.real(source), self.real(target))
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            failed = self.error("move", source, exc)
            raise TaskFailed(f"{failed.message} to {self.uri(target)}", permanent=failed.permanent) from None
        return True


def compile_regexp(text: str | None) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise TaskFailed(f"regExp {text!r} is not a valid regular expression: {exc}", permanent=True) from None


def sort_files(files: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    """Kestra's `sort`: NONE keeps the server's order (here: by name within each folder)."""
    if order in ("NAME_ASC", "NAME_DESC"):
        return sorted(files, key=lambda f: str(f["name"]), reverse=order == "NAME_DESC")
    if order in ("LAST_MODIFIED_ASC", "LAST_MODIFIED_DESC"):
        return sorted(files, key=lambda f: str(f["updatedDate"] or ""), reverse=order == "LAST_MODIFIED_DESC")
    if order != "NONE":
        raise TaskFailed(
            f"sort must be NONE, LAST_MODIFIED_ASC, LAST_MODIFIED_DESC, NAME_ASC or NAME_DESC, got {order!r}"
        )
    return files


def limit(ctx: RunContext, files: list[dict[str, Any]], max_files: Any) -> list[dict[str, Any]]:
    most = as_int(max_files, "maxFiles")
    if len(files) > most:
        ctx.logger.warn(f"Too many files to process ({len(files)}), limiting to {most}")
        return files[:most]
    return files


def moved_to(folder: str | None, path: str) -> str:
    """Where MOVE puts a processed file: moveDirectory/<its name>."""
    if not folder:
        raise TaskFailed("action MOVE needs moveDirectory, the folder the processed files are moved to", permanent=True)
    return posixpath.join(logical(folder), posixpath.basename(path))
