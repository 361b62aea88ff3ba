"""Real servers for the tests (Redis, PostgreSQL, MariaDB, sshd, moto's S3...), each started once per session.

`.ci/run` installs the Debian packages that hold them when they are missing. Where a server's program is not on
this machine, its tests skip with one reason naming the package, except in CI (`CI` set), where a test that cannot
reach its service fails: there the server must be there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_program(name: str, *folders: str) -> str | None:
    """`name` on PATH, or in one of `folders` (globs allowed: `/usr/lib/postgresql/*/bin`)."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in folders:
        for folder in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):
            candidate = folder / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def require_program(name: str, package: str, *folders: str) -> str:
    """The program's path; without it the test skips (fails in CI) naming the Debian package that holds it."""
    path = find_program(name, *folders)
    if path is None:
        unavailable(f"{name} is not installed: apt-get install {package} (.ci/run installs it)")
    return path


def unavailable(reason: str) -> NoReturn:
    """A server the test needs cannot run here: the test skips with `reason`, or fails in CI, which must have it."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must have its services: {reason}")
    pytest.skip(reason)


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:`port`; fails when `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start(argv: Sequence[str], log: Path, port: int, **kwargs: object) -> subprocess.Popen[bytes]:
    """Start a server process writing to `log`, and wait until it listens on `port`."""
    out = log.open("ab")
    process = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
    try:
        wait_for_port(port, process)
    except RuntimeError as exc:
        stop(process)
        raise RuntimeError(f"{exc}; its log: {log.read_text(errors='replace')[-2000:]}") from None
    return process
