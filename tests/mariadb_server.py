"""A real MariaDB server (Debian's `mariadb-server`: mariadb-install-db and mariadbd) on a free port of 127.0.0.1,
started once per session. The tests connect over TCP as a user with a real password; root only reaches the server
through its socket (unix_socket authentication), to create that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services import free_port, require_program, start, stop

USER = "gitsync"
PASSWORD = "my-Secret-0815"
DATABASE = "gitsync"


class MariaDbServer:
    def __init__(self, install: str, daemon: str, client: str, folder: Path) -> None:
        self.install = install
        self.daemon = daemon
        self.client = client
        self.folder = folder
        self.data = folder / "data"
        self.socket = folder / "mariadb.sock"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The JDBC URL Kestra's tasks take."""
        return f"jdbc:mysql://127.0.0.1:{self.port}/{DATABASE}"

    def _user(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def init(self) -> None:
        argv = [
            self.install, "--no-defaults", f"--datadir={self.data}", "--auth-root-authentication-method=socket",
            "--skip-test-db", *self._user(),
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        argv = [
            self.daemon, "--no-defaults", f"--datadir={self.data}", f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--socket={self.socket}", f"--pid-file={self.folder / 'mariadb.pid'}", "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=32M", "--skip-name-resolve",
            *self._user(),
        ]  # fmt: skip
        self.process = start(argv, self.folder / "mariadb.log", self.port)
        self.sql(
            f"CREATE DATABASE {DATABASE}; CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; "
            f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';"
        )

    def sql(self, statements: str) -> str:
        """Run SQL as root through the socket (the server's administration, not the code under test)."""
        argv = [self.client, "--no-defaults", f"--socket={self.socket}", "-u", "root", "-N", "-e", statements]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb failed: {done.stderr}")
        return done.stdout

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, timeout=30)
            self.process = None


@contextmanager
def mariadb_server() -> Iterator[MariaDbServer]:
    install = require_program("mariadb-install-db", "mariadb-server")
    daemon = require_program("mariadbd", "mariadb-server", "/usr/sbin")
    client = require_program("mariadb", "mariadb-client")
    folder = Path(tempfile.mkdtemp(prefix="gitsync-mariadb-"))
    server = MariaDbServer(install, daemon, client, folder)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
