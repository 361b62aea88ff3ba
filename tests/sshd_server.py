"""A real OpenSSH server (Debian's `openssh-server`, /usr/sbin/sshd) on a free port of 127.0.0.1, once per session.

It runs with its own host key and sshd_config in the session's temporary folder, and lets in one test user of the
session's own, `gitsync-ssh-<random>` (created with useradd, removed with its home when the session ends, so two
sessions on one machine never share a password, keys or folders), by password or by one of two keys of the session
(one with a passphrase) in its ~/.ssh/authorized_keys. sshd reads the user's password from /etc/shadow itself
(UsePAM no), so the user and the server need root, as sshd does to change user. Tests work in folders of their own
under the user's home (`folder()`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services import free_port, require_program, start, stop, unavailable

KEY_PASSPHRASE = "correct horse battery"


@dataclass
class SshServer:
    """What a test needs to reach the server: address, the user's credentials, the server's host key."""

    port: int
    password: str
    private_key: str
    """The user's key without a passphrase (OpenSSH format)."""
    locked_key: str
    """The user's key protected by KEY_PASSPHRASE."""
    host_public_key: str
    """The server's host key as a known_hosts line's key part: `ssh-ed25519 AAAA…`."""
    other_public_key: str
    """A host key of no server here (a known_hosts entry that does not match)."""
    user: str
    home: Path
    host: str = "127.0.0.1"
    passphrase: str = KEY_PASSPHRASE

    @property
    def known_hosts(self) -> str:
        """The known_hosts line of this server (OpenSSH's `[host]:port` form for a port other than 22)."""
        return f"[{self.host}]:{self.port} {self.host_public_key}\n"

    @property
    def wrong_known_hosts(self) -> str:
        return f"[{self.host}]:{self.port} {self.other_public_key}\n"

    def folder(self, name: str) -> Path:
        """A fresh folder of the test user's home (owned by it), for one test; returned as a local path."""
        path = self.home / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        self.own(path)
        return path

    def own(self, *paths: Path) -> None:
        """Give files the tests wrote to the test user (sshd serves them as that user)."""
        for path in paths:
            shutil.chown(path, self.user, self.user)


def _keygen(path: Path, kind: str, passphrase: str = "") -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "gitsync-test", "-f", str(path)],
                   check=True, capture_output=True)  # fmt: skip
    return Path(f"{path}.pub").read_text().strip()


def _new_user(password: str) -> tuple[str, Path]:
    """A user of this session only, with a home and `password`: its name and home."""
    user = "gitsync-ssh-" + secrets.token_hex(4)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", user], check=True, capture_output=True)
    subprocess.run(["chpasswd"], input=f"{user}:{password}".encode(), check=True, capture_output=True)
    return user, Path("/home") / user


def _public(line: str) -> str:
    """`type base64` of a public key line (its comment dropped)."""
    return " ".join(line.split()[:2])


@contextmanager
def sshd_server(folder: Path) -> Iterator[SshServer]:
    sshd = require_program("sshd", "openssh-server", "/usr/sbin")
    require_program("ssh-keygen", "openssh-client")
    if os.geteuid() != 0:
        unavailable("sshd needs root here: it changes to the test user and reads its password from /etc/shadow")
    password = "pw-" + secrets.token_hex(8)
    user, home = _new_user(password)
    host_key = folder / "host_ed25519"
    host_public = _public(_keygen(host_key, "ed25519"))
    other_public = _public(_keygen(folder / "other_ed25519", "ed25519"))
    user_key, locked_key = folder / "user_ed25519", folder / "locked_ed25519"
    authorized = [_keygen(user_key, "ed25519"), _keygen(locked_key, "ed25519", KEY_PASSPHRASE)]
    # sshd reads the file as the user: it lives in the user's home, written anew each session
    ssh_folder = home / ".ssh"
    ssh_folder.mkdir(mode=0o700, exist_ok=True)
    (ssh_folder / "authorized_keys").write_text("\n".join(authorized) + "\n")
    for path in (ssh_folder, ssh_folder / "authorized_keys"):
        shutil.chown(path, user, user)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        "\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {folder / 'sshd.pid'}",
            "AuthorizedKeysFile .ssh/authorized_keys", "StrictModes no", "UsePAM no",
            "PasswordAuthentication yes", "PubkeyAuthentication yes", "KbdInteractiveAuthentication no",
            "PermitRootLogin no", f"AllowUsers {user}", "AcceptEnv GITSYNC_*", "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE", "MaxStartups 50:30:100", "MaxSessions 50",
        ]) + "\n"
    )  # fmt: skip
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    process = start([sshd, "-D", "-e", "-f", str(config)], folder / "sshd.log", port)
    try:
        yield SshServer(
            port=port,
            password=password,
            private_key=user_key.read_text(),
            locked_key=locked_key.read_text(),
            host_public_key=host_public,
            other_public_key=other_public,
            user=user,
            home=home,
        )
    finally:
        stop(process)
        subprocess.run(["userdel", "--remove", user], capture_output=True)
