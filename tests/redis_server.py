"""A real Redis server (Debian's `redis-server`) on a free port of 127.0.0.1, started once per session.

Tests that stop it mid-run (the broker going away) use `pause()`/`resume()`: the same port, the same data.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services import free_port, require_program, start, stop


class RedisServer:
    def __init__(self, program: str, folder: Path) -> None:
        self.program = program
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        argv = [
            self.program, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--databases", "64",
        ]  # fmt: skip
        self.process = start(argv, self.folder / "redis.log", self.port)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    pause = stop
    """Take the server away (its clients see connection errors); `resume()` brings it back on the same port."""

    def resume(self) -> None:
        self.start()

    def flush(self) -> None:
        """Empty every database (between tests that need a clean broker)."""
        subprocess.run([self.program.replace("redis-server", "redis-cli"), "-p", str(self.port), "FLUSHALL"],
                       check=True, capture_output=True)  # fmt: skip


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(require_program("redis-server", "redis-server"), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
