"""What ownership costs and how fast it acts, as a user sees it, each figure next to a reference from the same run.

1. `gitsync run` of a one-task flow, process start to exit (the lease is taken, swept and given back), against
   `gitsync --version` (the interpreter and gitsync's import: the floor of any command), interleaved.
2. Ctrl-C on `gitsync run` of a `sleep` task: seconds from SIGINT to exit (the bound is 5 s).
3. A `gitsync run` SIGKILLed beside a running daemon: seconds until the daemon has resolved its execution
   (its pid is gone: found at the next sweep, every 2 s), against the lease (`lease_seconds`).
4. A `gitsync run` frozen with SIGSTOP (its pid lives, it renews nothing): seconds until it is resolved, against
   the lease.

Run: .venv/bin/python bench/bench_ownership.py [--rounds 5] [--lease 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

GITSYNC = [sys.executable, "-m", "gitsync"]
FLOWS = {
    "quick.yaml": "id: quick\nnamespace: bench\ntasks:\n  - id: hi\n    type: io.kestra.plugin.core.debug.Return\n"
    "    format: hi\n",
    "slow.yaml": "id: slow\nnamespace: bench\ntasks:\n  - id: long\n    type: io.kestra.plugin.scripts.shell.Commands\n"
    "    taskRunner:\n      type: io.kestra.plugin.core.runner.Process\n    commands:\n      - sleep 600\n",
}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


class World:
    def __init__(self, root: Path, lease: float) -> None:
        repo = root / "repo"
        (repo / "flows").mkdir(parents=True)
        for name, text in FLOWS.items():
            (repo / "flows" / name).write_text(text)
        git("init", "-q", "-b", "main", cwd=repo)
        git("add", "-A", cwd=repo)
        git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "flows", cwd=repo)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.db = root / "gitsync.db"
        self.config = root / "gitsync.yaml"
        source = {"name": "main", "repo": str(repo), "branch": "main", "path": "flows", "poll": "1h"}
        config = {"db": str(self.db), "data_dir": str(root / "data"), "http": {"listen": f"127.0.0.1:{port}"}}
        self.config.write_text(yaml.safe_dump({**config, "sources": [source]}))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GITSYNC_")}
        self.env["GITSYNC_LEASE_SECONDS"] = str(lease)
        subprocess.run([*GITSYNC, "sync", "--config", str(self.config)], check=True, capture_output=True, env=self.env)

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*GITSYNC, *args, "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )

    def state(self, flow: str) -> str | None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            row = conn.execute(
                "SELECT state FROM executions WHERE flow_uid = ? ORDER BY id DESC LIMIT 1", (flow,)
            ).fetchone()
            return row[0] if row else None
        finally:
            conn.close()

    def running_task(self) -> bool:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return (
                conn.execute("SELECT 1 FROM task_runs WHERE task_id = 'long' AND state = 'RUNNING'").fetchone()
                is not None
            )
        finally:
            conn.close()


def wait(condition: Callable[[], bool], timeout: float = 120.0) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not met")
        time.sleep(0.02)
    return time.monotonic() - start


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def cleanup_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    subprocess.run(["pkill", "-f", "^sleep 600$"], check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lease", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp), args.lease)
        runs, floors = [], []
        for _ in range(args.rounds):
            floors.append(timed([*GITSYNC, "--version"], world.env))
            runs.append(timed([*GITSYNC, "run", "bench.quick", "--quiet", "--config", str(world.config)], world.env))
        run_s, floor_s = statistics.median(runs), statistics.median(floors)
        print(
            f"1. gitsync run (one Return task): {run_s:.3f} s; gitsync --version {floor_s:.3f} s; "
            f"ratio {run_s / floor_s:.2f}x (medians of {args.rounds})"
        )

        stops = []
        for _ in range(args.rounds):
            proc = world.popen("run", "bench.slow")
            wait(world.running_task)
            start = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
            stops.append(time.monotonic() - start)
            cleanup_group(proc)
        print(f"2. Ctrl-C to exit: median {statistics.median(stops):.2f} s, max {max(stops):.2f} s; bound 5 s")

        daemon = world.popen("daemon")
        try:
            wait(lambda: world.state("bench.quick") is not None)
            time.sleep(3)  # the daemon is up and sweeping
            for label, sig in (
                ("3. SIGKILLed run resolved by the daemon", signal.SIGKILL),
                ("4. frozen (SIGSTOP) run resolved by the daemon", signal.SIGSTOP),
            ):
                took = []
                for _ in range(max(1, args.rounds // 2)):
                    proc = world.popen("run", "bench.slow")
                    wait(world.running_task)
                    start = time.monotonic()
                    proc.send_signal(sig)
                    if sig == signal.SIGKILL:
                        proc.wait(60)  # reaped at once, as a shell reaps it (a zombie's pid still exists)
                    wait(lambda: world.state("bench.slow") == "FAILED")
                    took.append(time.monotonic() - start)
                    if sig == signal.SIGSTOP:
                        proc.send_signal(signal.SIGCONT)
                    cleanup_group(proc)
                    proc.wait(60)
                print(
                    f"{label}: median {statistics.median(took):.2f} s; lease {args.lease:g} s "
                    f"(ratio {statistics.median(took) / args.lease:.2f})"
                )
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)


if __name__ == "__main__":
    main()
