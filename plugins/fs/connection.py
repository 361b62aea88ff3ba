"""One SSH connection for the ssh and sftp tasks (paramiko, the `ssh` extra): login, host key check, errors in words.

Host keys: `knownHosts` (gitsync's addition: known_hosts lines, `[host]:port key-type base64` for a port other than
22) names the keys a server may show. A key that differs from the one known for the host is always refused: it is
what a man-in-the-middle shows. With `strictHostKeyChecking: yes` (or `ask`: there is nobody to ask) an unknown host
is refused too (its keys come from `knownHosts`, or the service user's ~/.ssh/known_hosts without it); with `no`,
Kestra's default, an unknown host's key is accepted and its fingerprint logged.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugins.core._props import as_bool, as_int
from plugins.extras import require
from runner.api import RunContext, TaskFailed

if TYPE_CHECKING:
    import paramiko

EXTRA = "ssh"
CONNECT_SECONDS = 15.0
SAFE_PROXY_VALUE = re.compile(r"[A-Za-z0-9._@-]+")
"""What %h and %r may hold in a proxyCommand (they are put into a shell command as they are)."""


def paramiko_module(task_type: str) -> Any:
    """paramiko, or the failure that names the `ssh` extra."""
    return require("paramiko", EXTRA, task_type)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a key (what `ssh-keygen -lf` prints)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return f"{key.get_name()} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


@dataclass(frozen=True)
class Login:
    """Everything one connection needs, rendered; `private_key` is the key's text (OpenSSH or PEM)."""

    task_type: str
    host: str
    port: Any
    username: str | None
    password: str | None = None
    private_key: str | None = None
    passphrase: str | None = None
    strict: Any = "no"
    known_hosts: str | None = None
    rsa1: Any = False
    proxy_command: str | None = None
    kex: str | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def _known_entry(login: Login, port: int) -> str:
    return login.host if port == 22 else f"[{login.host}]:{port}"


def _load_key(pm: Any, text: str, passphrase: str | None, field: str) -> paramiko.PKey:
    """The private key of `text`, of whichever type it is; a clear error for a bad key or passphrase."""
    failures = []
    for cls in (pm.Ed25519Key, pm.ECDSAKey, pm.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text.strip() + "\n"), password=passphrase or None)
        except pm.PasswordRequiredException:
            raise TaskFailed(
                f"the private key in {field} is protected by a passphrase: give it in the passphrase property",
                permanent=True,
            ) from None
        except (pm.SSHException, ValueError) as exc:
            failures.append(str(exc))
    if passphrase and any("checkints" in f or "decrypt" in f.lower() or "password" in f.lower() for f in failures):
        raise TaskFailed(f"the passphrase does not open the private key in {field}", permanent=True)
    raise TaskFailed(
        f"{field} is not a private key that can be read (an OpenSSH or PEM key: Ed25519, ECDSA or RSA): "
        f"{failures[-1] if failures else 'empty'}",
        permanent=True,
    )


class _LoggedAccept:
    """Accepts an unknown host's key (strictHostKeyChecking: no) and logs its fingerprint."""

    def __init__(self, ctx: RunContext, entry: str) -> None:
        self.ctx, self.entry = ctx, entry

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.ctx.logger.info(
            f"host key of {self.entry} not checked (strictHostKeyChecking: no): {fingerprint(key)}; to check it, "
            f"set knownHosts to '{self.entry} {key.get_name()} {key.get_base64()}' and strictHostKeyChecking: yes"
        )


class _Refuse:
    """Refuses an unknown host (strictHostKeyChecking: yes)."""

    def __init__(self, entry: str, given: bool) -> None:
        self.entry, self.given = entry, given

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        where = "knownHosts" if self.given else "~/.ssh/known_hosts of the user gitsync runs as (no knownHosts given)"
        raise TaskFailed(
            f"the host key of {self.entry} ({fingerprint(key)}) is not in {where}, and strictHostKeyChecking is "
            f"yes: add the line '{self.entry} {key.get_name()} {key.get_base64()}' to knownHosts once you have "
            "checked the fingerprint with the server's administrator",
            permanent=True,
        )


def _host_keys(pm: Any, client: paramiko.SSHClient, login: Login, strict: bool) -> None:
    keys = client.get_host_keys()
    if login.known_hosts:
        for number, line in enumerate(login.known_hosts.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                entry = pm.hostkeys.HostKeyEntry.from_line(line, number)
            except (pm.SSHException, ValueError, TypeError) as exc:
                entry, reason = None, str(exc)
            else:
                reason = "expected 'host key-type base64'"
            if entry is None or entry.key is None:
                raise TaskFailed(f"knownHosts line {number} is not a known_hosts line ({reason}): {line[:80]!r}",
                                 permanent=True)  # fmt: skip
            for name in entry.hostnames:
                keys.add(name, entry.key.get_name(), entry.key)
    elif strict:
        client.load_system_host_keys()


def _socket(login: Login, port: int) -> Any:
    if not login.proxy_command:
        return None
    pm = paramiko_module(login.task_type)
    for field, value in (("host", login.host), ("username", login.username or "")):
        if value and not SAFE_PROXY_VALUE.fullmatch(value):
            raise TaskFailed(
                f"the {field} {value!r} may only hold letters, digits, '.', '_', '@' and '-' when a proxyCommand "
                "is set (it is put into that shell command)",
                permanent=True,
            )
    command = login.proxy_command.replace("%h", login.host).replace("%p", str(port))
    return pm.ProxyCommand(command.replace("%r", login.username or ""))


def _disabled(pm: Any, login: Login) -> dict[str, list[str]]:
    disabled: dict[str, list[str]] = {}
    if not as_bool(login.rsa1 if login.rsa1 is not None else False, "enableSshRsa1"):
        disabled = {"keys": ["ssh-rsa"], "pubkeys": ["ssh-rsa"]}
    if login.kex:
        known = list(pm.Transport._preferred_kex)
        if login.kex not in known:
            raise TaskFailed(f"keyExchangeAlgorithm {login.kex!r} is not one gitsync knows: {', '.join(known)}",
                             permanent=True)  # fmt: skip
        disabled["kex"] = [name for name in known if name != login.kex]
    return disabled


@contextmanager
def connected(ctx: RunContext, login: Login) -> Iterator[paramiko.SSHClient]:
    """An SSHClient logged in to `login.host`, closed on leaving; TaskFailed saying why it could not connect."""
    pm = paramiko_module(login.task_type)
    port = as_int(login.port if login.port not in (None, "") else 22, "port")
    if not login.username:
        raise TaskFailed("username is required to log in over SSH", permanent=True)
    strict_text = str(login.strict or "no").strip().lower()
    if strict_text not in ("yes", "no", "ask"):
        raise TaskFailed(f"strictHostKeyChecking must be yes, no or ask, got {login.strict!r}", permanent=True)
    strict = strict_text != "no"
    entry = _known_entry(login, port)
    pkey = _load_key(pm, login.private_key, login.passphrase, "the private key") if login.private_key else None
    client = pm.SSHClient()
    _host_keys(pm, client, login, strict)
    client.set_missing_host_key_policy(_Refuse(entry, bool(login.known_hosts)) if strict else _LoggedAccept(ctx, entry))
    method = "key" if pkey is not None else "password"
    try:
        client.connect(
            login.host, port, username=login.username, password=None if pkey else login.password, pkey=pkey,
            passphrase=None, allow_agent=False, look_for_keys=False, timeout=CONNECT_SECONDS,
            banner_timeout=CONNECT_SECONDS, auth_timeout=CONNECT_SECONDS, sock=_socket(login, port),
            disabled_algorithms=_disabled(pm, login),
        )  # fmt: skip
    except TaskFailed:
        client.close()
        raise
    except pm.BadHostKeyException as exc:
        client.close()
        raise TaskFailed(
            f"the host key of {entry} is not the one knownHosts gives: the server showed {fingerprint(exc.key)}, "
            f"knownHosts expects {fingerprint(exc.expected_key)}. Someone may be between gitsync and the server; "
            "if its key was changed on purpose, put its new key in knownHosts",
            permanent=True,
        ) from None
    except pm.AuthenticationException as exc:
        client.close()
        raise TaskFailed(
            f"{entry} refused the login of user {login.username!r} by {method} ({exc})", permanent=True
        ) from None
    except socket.gaierror as exc:
        client.close()
        raise TaskFailed(f"the host {login.host!r} is not known ({exc.strerror})", permanent=True) from None
    except (pm.ssh_exception.NoValidConnectionsError, ConnectionRefusedError):
        client.close()
        raise TaskFailed(
            f"nothing answers SSH on {login.host}:{port}: the connection was refused (is the host or port wrong, or "
            "the SSH server stopped?)",
            permanent=True,
        ) from None
    except TimeoutError as exc:
        client.close()
        raise TaskFailed(f"{entry} did not answer within {CONNECT_SECONDS:.0f} s ({exc})") from None
    except (pm.SSHException, OSError, EOFError) as exc:
        client.close()
        raise TaskFailed(f"the SSH connection to {entry} failed: {exc}") from None
    try:
        yield client
    finally:
        client.close()
