"""`gitsync worker` subprocesses for the Celery tests: started on a queue with their own data_dir, stopped with
SIGTERM or killed with SIGKILL (a worker lost mid-task), with the environment the daemon gets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon_harness import daemon_env


def celery_env(broker_url: str, **settings: str) -> dict[str, str]:
    """The variables that put the daemon (and the workers) on the Celery executor over `broker_url`."""
    env = {"GITSYNC_EXECUTOR": "celery", "GITSYNC_BROKER_URL": broker_url}
    env.update({f"GITSYNC_CELERY_{k.upper()}": v for k, v in settings.items()})
    return env


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the worker is lost with whatever it runs (its task processes are left to the test)."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_worker(directory: Path, name: str, queues: str, env: dict[str, str], concurrency: int = 4) -> Worker:
    folder = directory / name
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "worker.log"
    command = [
        sys.executable, "-m", "gitsync", "worker", "--queues", queues, "--concurrency", str(concurrency),
        "--hostname", name, "--data-dir", str(folder / "data"), "--db", str(folder / "never.db"),
    ]  # fmt: skip
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, cwd=folder, env=daemon_env(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Worker(name, proc, log_path)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 90.0, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
