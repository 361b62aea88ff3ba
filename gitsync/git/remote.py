"""The remotes a fetch reads from: one dulwich client per transport, and their errors in words a user can act on.

Transports, chosen from `source.repo`:

* a local path (absolute or relative to the working directory) or `file://` URL: dulwich's `LocalGitClient`;
* `http://` / `https://`: smart HTTP. With `source.token_env`, the token is sent as basic auth (username
  `x-access-token` unless the URL names one; GitHub, Gitea and GitLab accept any username with a token as the
  password). Credentials never travel in the URL, and every message and log line is redacted;
* `git://`: dulwich's TCP client, with the same timeout on connect and on every read;
* `ssh://[user@]host[:port]/path` and `user@host:path`: the system `ssh` program (dulwich's `SubprocessSSHVendor`).
  Keys are found the way `ssh` finds them: `~/.ssh/config`, the agent (`SSH_AUTH_SOCK`), `~/.ssh/id_*`; the host
  must be in `known_hosts`. `GIT_SSH_COMMAND` replaces the command (e.g. `ssh -i /keys/deploy -o IdentitiesOnly=yes`);
  gitsync adds `-o BatchMode=yes -o ConnectTimeout=<timeout>` so a prompt or a dead host cannot hang the daemon.

Every dulwich, socket and HTTP error raised while a remote is used becomes a `FetchError` (`translated_errors`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from dulwich.client import (
    GitClient,
    HTTPUnauthorized,
    LocalGitClient,
    SSHGitClient,
    SubprocessSSHVendor,
    TCPGitClient,
    Urllib3HttpGitClient,
    default_urllib3_manager,
    parse_rsync_url,
)
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.protocol import DEFAULT_GIT_PROTOCOL_VERSION_FETCH, Protocol

from gitsync.config import SourceConfig
from gitsync.errors import FetchError
from gitsync.redact import redact, redact_url

log = logging.getLogger("gitsync.fetch")

HTTP_USERNAME = "x-access-token"
"""The basic-auth username sent with a token when the URL names none (the hosts accept any)."""

# --- transports ---------------------------------------------------------------------------------------------


@dataclass
class Remote:
    """A dulwich client, the path to ask it for, and what to say about it (never a credential)."""

    client: GitClient
    path: str
    display: str
    kind: str
    timeout: float
    token_env: str | None = None
    secrets: list[str] = field(default_factory=list)

    def clean(self, text: object) -> str:
        return redact(str(text), self.secrets)


def open_remote(source: SourceConfig, timeout: float) -> Remote:
    location = source.repo
    parts = urlsplit(location) if "://" in location else None
    if parts is None:
        return _scp_or_local(location, timeout)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return _http_remote(parts, source, timeout)
    if scheme == "git":
        client = _TimeoutTCPGitClient(parts.hostname or "localhost", parts.port, timeout=timeout)
        return Remote(client, unquote(parts.path), redact_url(location), "git", timeout)
    if scheme in ("ssh", "git+ssh"):
        return _ssh_remote(parts.hostname or "", parts.port, parts.username, unquote(parts.path), location, timeout)
    if scheme == "file":
        return Remote(LocalGitClient(), unquote(parts.path), redact_url(location), "local", timeout)
    raise FetchError(f"{redact_url(location)}: unsupported URL scheme {scheme!r} (use a path, file, http(s), git, ssh)")


def _scp_or_local(location: str, timeout: float) -> Remote:
    if not Path(location).exists():
        try:
            user, host, path = parse_rsync_url(location)
        except ValueError:
            pass
        else:
            return _ssh_remote(host, None, user, path, location, timeout)
    return Remote(LocalGitClient(), location, location, "local", timeout)


def _http_remote(parts: SplitResult, source: SourceConfig, timeout: float) -> Remote:
    token = source.token()
    url_password = unquote(parts.password) if parts.password else None
    password = token or url_password
    username = unquote(parts.username) if parts.username else HTTP_USERNAME
    host = parts.netloc.rpartition("@")[2]
    base_url = urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
    client = Urllib3HttpGitClient(
        base_url,
        pool_manager=_http_pool(base_url, timeout),
        username=username if password else None,
        password=password,
        timeout=timeout,
    )
    secrets = [s for s in (token, url_password) if s]
    return Remote(client, "", redact_url(source.repo), "http", timeout, source.token_env, secrets)


def _http_pool(base_url: str, timeout: float) -> Any:
    """dulwich's pool manager (proxies, user agent) retrying a failed connect once and a timed-out read never.

    urllib3 retries three times by default, which would turn a 30 s timeout into two minutes; the next poll retries.
    (urllib3 is imported here: a daemon following a local repository never needs it.)
    """
    from urllib3.util.retry import Retry

    pool = default_urllib3_manager(None, base_url=base_url, timeout=timeout)
    pool.connection_pool_kw["retries"] = Retry(total=None, connect=1, read=0, status=0, other=0, redirect=5)
    return pool


def _ssh_remote(host: str, port: int | None, user: str | None, path: str, location: str, timeout: float) -> Remote:
    command = os.environ.get("GIT_SSH_COMMAND") or "ssh"
    seconds = max(1, round(timeout))
    command += f" -o BatchMode=yes -o ConnectTimeout={seconds} -o ServerAliveInterval={seconds}"
    client = SSHGitClient(host, port=port, username=user, vendor=SubprocessSSHVendor(), ssh_command=command)
    return Remote(client, path, redact_url(location), "ssh", timeout)


class _TimeoutTCPGitClient(TCPGitClient):
    """dulwich's git:// client with a timeout on connect and on every read (dulwich's own blocks forever)."""

    def __init__(self, host: str, port: int | None, timeout: float) -> None:
        super().__init__(host, port)
        self._timeout = timeout

    def _connect(
        self, cmd: bytes, path: str | bytes, protocol_version: int | None = None
    ) -> tuple[Protocol, Callable[[], bool], IO[bytes] | None]:
        path_bytes = path if isinstance(path, bytes) else path.encode(self._remote_path_encoding)
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rfile = sock.makefile("rb", -1)
        wfile = sock.makefile("wb", 0)

        def close() -> None:
            rfile.close()
            wfile.close()
            sock.close()

        proto = Protocol(rfile.read, wfile.write, close, report_activity=self._report_activity)
        if path_bytes.startswith(b"/~"):
            path_bytes = path_bytes[1:]
        self.protocol_version = protocol_version or DEFAULT_GIT_PROTOCOL_VERSION_FETCH
        extra = b"\0\0version=%d\0" % self.protocol_version if self.protocol_version == 2 else b""
        proto.send_cmd(b"git-" + cmd, path_bytes, b"host=" + self._host.encode("ascii") + extra)
        return proto, lambda: bool(select.select([sock], [], [], 0)[0]), None


# --- errors -------------------------------------------------------------------------------------------------


@contextmanager
def translated_errors(remote: Remote) -> Iterator[None]:
    """Turn dulwich, urllib3 and OS errors into FetchError with a message a person can act on, redacted."""
    try:
        yield
    except FetchError as exc:
        raise FetchError(remote.clean(exc)) from exc.__cause__
    except Exception as exc:
        raise FetchError(remote.clean(_explain(exc, remote))) from exc


def _explain(exc: Exception, remote: Remote) -> str:
    where = remote.display
    if isinstance(exc, HTTPUnauthorized):
        return _auth_failure(remote, 401)
    if isinstance(exc, NotGitRepository):
        return _not_found(remote)
    network = network_cause(exc, remote.timeout)
    if network is not None:
        return f"{where}: {network}"
    if isinstance(exc, HangupException):
        said = f": {exc}" if exc.stderr_lines else ""
        return f"{where}: the remote closed the connection (repository not found or not exported?){said}"
    if isinstance(exc, GitProtocolError):
        return _protocol_failure(exc, remote)
    if isinstance(exc, OSError | ValueError):
        return f"{where}: cannot fetch: {exc}"
    return f"{where}: unexpected error while fetching: {type(exc).__name__}: {exc}"


def _auth_failure(remote: Remote, status: int) -> str:
    verb = "authentication failed" if status == 401 else "access denied"
    if remote.token_env is None:
        hint = "no token is configured: set the source's token_env to the name of a variable that holds one"
    elif not os.environ.get(remote.token_env):
        hint = f"the environment variable {remote.token_env} (token_env) is not set or empty"
    elif status == 401:
        hint = f"the token in {remote.token_env} was refused: check it is valid and not expired"
    else:
        hint = f"the token in {remote.token_env} may not read this repository: check its scopes"
    return f"{remote.display}: {verb} (HTTP {status}); {hint}"


def _not_found(remote: Remote) -> str:
    if remote.kind == "local":
        if not Path(remote.path).exists():
            return f"{remote.display}: no such directory"
        return f"{remote.display}: not a git repository"
    hint = "" if remote.token_env or remote.secrets else " (if it is private, set the source's token_env)"
    return f"{remote.display}: repository not found (HTTP 404): check the URL{hint}"


_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
_HTTP_STATUS = re.compile(r"unexpected http resp (\d{3})")


def _protocol_failure(exc: GitProtocolError, remote: Remote) -> str:
    text = str(exc)
    match = _HTTP_STATUS.search(text)
    if match:
        status = int(match.group(1))
        if status == 403:
            return _auth_failure(remote, 403)
        return f"{remote.display}: the server answered HTTP {status}"
    if "not exported" in text or "no such repository" in text.lower():
        return f"{remote.display}: repository not found ({text.removeprefix('ERR ').strip()})"
    return f"{remote.display}: git protocol error: {text} (a transfer cut short? the next fetch retries)"


def network_cause(exc: BaseException, timeout: float | None = None) -> str | None:
    """What went wrong on the network, from anywhere in the exception's chain (urllib3 wraps OS errors)."""
    for cause in _chain(exc):
        name = type(cause).__name__
        if isinstance(cause, TimeoutError | socket.timeout) or name in ("ConnectTimeoutError", "ReadTimeoutError"):
            within = f"{timeout:g} s" if timeout is not None else "the timeout"
            return f"timed out (no answer within {within}); is the host reachable?"
        if isinstance(cause, socket.gaierror) or name == "NameResolutionError":
            return "cannot resolve the host name (DNS); check the URL"
        if isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(cause):
            return "connection refused; is the server running and the port right?"
        if name == "SSLError":
            return f"TLS error: {cause}"
        if isinstance(cause, ConnectionError) or getattr(cause, "errno", None) in _UNREACHABLE:
            return f"cannot reach the host: {cause}"
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
