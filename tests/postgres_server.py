"""A real PostgreSQL server (Debian's `postgresql`: initdb and postgres from /usr/lib/postgresql/*/bin) on a free
port of 127.0.0.1, started once per session, with password (SCRAM) authentication for its one user.

PostgreSQL refuses to run as root: as root, the data folder is made outside pytest's private tmp (which only root
may enter) and given to the `postgres` OS user, and both programs run as that user (`runuser -u postgres`).
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

FOLDERS = ("/usr/lib/postgresql/*/bin",)
USER = "gitsync"
PASSWORD = "pg-Secret-4711"
DATABASE = "postgres"


class PostgresServer:
    def __init__(self, bin_folder: Path, folder: Path) -> None:
        self.bin = bin_folder
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.as_user: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        """The JDBC URL Kestra's tasks take."""
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{DATABASE}"

    @property
    def dsn(self) -> str:
        """A libpq URL for the tests' own checks (psycopg)."""
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def init(self) -> None:
        password_file = self.folder / "pw"
        password_file.write_text(PASSWORD + "\n")
        if self.as_user:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(password_file, "postgres", "postgres")
        argv = [
            *self.as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={password_file}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        password_file.unlink()

    def start(self) -> None:
        argv = [
            *self.as_user, str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        log = self.folder / "postgres.log"
        log.touch()
        self.process = start(argv, log, self.port)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    initdb = Path(require_program("initdb", "postgresql", *FOLDERS))
    folder = Path(tempfile.mkdtemp(prefix="gitsync-pg-"))
    os.chmod(folder, 0o700)
    server = PostgresServer(initdb.parent, folder)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
