"""The Celery executor's scale-out and its cost per task, against the local executor, in one run.

1. 200 one-second `sleep 1` shell tasks in a Parallel, through the daemon with `executor: celery`, with 1, 2 and
   4 `gitsync worker` processes (concurrency 10 each): the execution's wall time (its own start and end) and the
   speed-up against 1 worker (goal: >= 0.9 x workers). The CPU seconds the daemon and the workers used, per task.
2. A chain of N trivial shell tasks (`true`, one after the other), through the same daemon on Celery (1 worker)
   and through a daemon on the local executor: the per-task wall time both ways and the Celery path's overhead.

A Redis server (Debian's redis-server) is started on a free port for the run and stopped after.

Run: .venv/bin/python bench/bench_celery.py [--tasks 200] [--chain 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from celery_cluster import Worker, celery_env, start_worker, wait_for
from daemon_harness import Daemon, start_daemon
from gitservers import GitRepo
from redis_server import redis_server

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TICK = os.sysconf("SC_CLK_TCK")


def flows(tasks: int, chain: int) -> dict[str, str]:
    sleeps = "".join(
        f"      - id: s{i}\n        type: io.kestra.plugin.scripts.shell.Commands\n        commands: [sleep 1]\n"
        for i in range(tasks)
    )
    steps = "".join(
        f"  - id: c{i}\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands: ['true']\n"
        for i in range(chain)
    )
    return {
        "flows/sleeps.yaml": f"id: sleeps\nnamespace: bench\ntasks:\n  - id: all\n"
        f"    type: io.kestra.plugin.core.flow.Parallel\n    concurrent: 0\n    tasks:\n{sleeps}",
        "flows/chain.yaml": f"id: chain\nnamespace: bench\ntasks:\n{steps}",
    }


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of a process (its own threads), or of its waited-for children (the task processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in ((13, 14) if children else (11, 12))) / TICK


def cpu(daemon: Daemon, workers: list[Worker]) -> tuple[float, float, float]:
    """The daemon's CPU (its task processes' with it when it runs them), the workers' own CPU, and their task
    processes' CPU."""
    pids = [w.proc.pid for w in workers]
    return (
        cpu_seconds(daemon.pid) + (0.0 if workers else cpu_seconds(daemon.pid, children=True)),
        sum(cpu_seconds(pid) for pid in pids),
        sum(cpu_seconds(pid, children=True) for pid in pids),
    )


def run(daemon: Daemon, flow: str) -> float:
    answer = daemon.post(f"/api/v1/executions/bench/{flow}", headers=AUTH, json={})
    assert answer.status_code == 201, answer.text
    execution = answer.json()["id"]

    def ended() -> dict[str, str] | None:
        rows = daemon.query("SELECT state, started_at, ended_at FROM executions WHERE id = ?", (execution,))
        return rows[0] if rows and rows[0]["ended_at"] else None

    row = daemon.wait_for(ended, f"{flow} ends", timeout=600, interval=0.2)
    assert row["state"] == "SUCCESS", row
    start, end = (datetime.fromisoformat(row[k].replace("Z", "+00:00")) for k in ("started_at", "ended_at"))
    return (end - start).total_seconds()


def seen(daemon: Daemon) -> set[str]:
    return {w["hostname"] for w in daemon.get("/healthz").json()["executor"]["workers"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--chain", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as folder, redis_server(Path(folder)) as redis:
        root = Path(folder)
        repo = GitRepo(root / "repo")
        repo.commit(flows(args.tasks, args.chain))
        source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
        env = {"GITSYNC_API_TOKEN": TOKEN, **celery_env(redis.url)}
        daemon = start_daemon(root / "celery-daemon", [source], env=env)
        local = start_daemon(root / "local-daemon", [source], env={"GITSYNC_API_TOKEN": TOKEN})
        workers: list[Worker] = []
        try:
            for d in (daemon, local):
                d.wait_for(lambda d=d: "bench.chain" in d.flow_uids(), "the flows are applied")
            walls: dict[int, float] = {}
            for count in (1, 2, 4):
                while len(workers) < count:
                    workers.append(
                        start_worker(root / "workers", f"w{len(workers) + 1}", "gitsync", env, concurrency=10)
                    )
                names = {w.name for w in workers}
                wait_for(lambda names=names: names <= seen(daemon), "the workers are seen")
                before = cpu(daemon, workers)
                walls[count] = run(daemon, "sleeps")
                used = [1000 * (b - a) / args.tasks for a, b in zip(before, cpu(daemon, workers), strict=True)]
                ideal = args.tasks / (10 * count)
                print(
                    f"{args.tasks} x sleep 1, {count} worker(s) x 10: {walls[count]:6.2f} s (ideal {ideal:.0f} s), "
                    f"speed-up {walls[1] / walls[count]:.2f}x (goal >= {0.9 * count:.1f}x), "
                    f"CPU per task: daemon {used[0]:.1f} ms, workers {used[1]:.1f} ms, "
                    f"the shell processes {used[2]:.1f} ms",
                    flush=True,
                )
            before = cpu(local, [])
            wall = run(local, "sleeps")
            print(
                f"reference, the local executor (32 threads in the daemon): {args.tasks} x sleep 1 in {wall:.2f} s, "
                f"CPU per task: daemon {1000 * (cpu(local, [])[0] - before[0]) / args.tasks:.1f} ms "
                "(the shell processes included: they are the daemon's children)",
                flush=True,
            )
            for w in workers[1:]:
                w.stop()
            workers = workers[:1]
            run(daemon, "chain")  # warm: the plugins imported, the processes' caches filled
            run(local, "chain")
            celery_wall = run(daemon, "chain")
            local_wall = run(local, "chain")
            per_celery, per_local = 1000 * celery_wall / args.chain, 1000 * local_wall / args.chain
            print(
                f"chain of {args.chain} x `true`: local executor {per_local:.1f} ms per task, Celery (1 worker) "
                f"{per_celery:.1f} ms per task: overhead {per_celery - per_local:.1f} ms per task "
                f"({per_celery / per_local:.2f}x)",
                flush=True,
            )
        finally:
            for w in workers:
                w.stop()
            daemon.stop()
            local.stop()


if __name__ == "__main__":
    main()
