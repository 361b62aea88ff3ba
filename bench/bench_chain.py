"""A realistic chain as a user runs it, through gitsync and through its peers, interleaved in one run.

Real flows have a different expression in almost every task, so a template cache does not help them: this measures
what they cost. The chain is N Return tasks, each with its own `format: "{{ k + 1 }}"`. Every figure is a marginal
cost per task, (time of 1,010 tasks - time of 10 tasks) / 1,000, medians of `--rounds`, so start-up cancels out:

1. `gitsync run --file` (whole processes), against the same chain with one expression repeated in every task
   (every task after the first finds its template compiled: the floor for expressions); with `--compare PYTHON`,
   the same commands through another checkout's interpreter (e.g. the commit before a change), with the ratio.
2. The daemon (one process, the flows applied from a git repository): each chain run through the API three times;
   the figure is from the executions' own start and end, first run (templates new to the process) and second run.
3. Prefect 3 and Dagster, from the virtual environments `../shared/bench-peers/setup_venvs.sh` builds under
   `--peers` (default `$PERF_ROOT`, else `./peers-work`), when they are there: their workers
   (`peer_worker_prefect.py`, `peer_worker_dagster.py`) time one chain of N trivial tasks in-process after a
   warm-up; the marginal is taken over the same two sizes. Without the venvs their published figures are printed,
   labelled so.

Targets (issue 12): 1 <= 0.3 ms per task; 2, second run, <= 0.15 ms per task.

Run: .venv/bin/python bench/bench_chain.py [--rounds 3] [--compare /path/to/other/.venv/bin/python] [--peers DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from daemon_harness import Daemon, start_daemon
from gitservers import GitRepo

SIZES = (10, 1010)
PUBLISHED = {"prefect": ("Prefect 3.8.8", 7.1), "dagster": ("Dagster 1.13", 11.0)}
"""ms per task at N=1000, from bench-peers/README.md (2026-11-24, 2 cores)."""
PEERS_SCRIPTS = Path(__file__).resolve().parents[2] / "shared" / "bench-peers"
TOKEN = "bench-api-token"


def chain(n: int, distinct: bool) -> str:
    lines = [f"id: chain{n}{'d' if distinct else 'r'}", "namespace: bench", "tasks:"]
    for k in range(n):
        expression = f"{{{{ {k} + 1 }}}}" if distinct else "{{ 1 + 1 }}"
        lines += [f"  - id: t{k}", "    type: io.kestra.plugin.core.debug.Return", f'    format: "{expression}"']
    return "\n".join(lines) + "\n"


CPU: dict[str, dict[int, list[float]]] = {}
"""CPU seconds (user + system) of each `gitsync run`, by configuration: steadier than wall time on a busy machine."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(python: str, flow: Path, work: Path, key: str = "", n: int = 0) -> float:
    db, data = work / f"{time.monotonic_ns()}.db", work / "data"
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(
        [python, "-m", "gitsync", "run", "--file", str(flow), "--quiet", "--db", str(db), "--data-dir", str(data)],
        check=True,
        capture_output=True,
        cwd=work,  # `-m` puts the working directory first on sys.path: each interpreter must import its own gitsync
    )
    wall = time.perf_counter() - start
    CPU.setdefault(key, {}).setdefault(n, []).append(_children_cpu() - cpu)
    return wall


def run_peer(python: Path, tool: str, n: int, work: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(work / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    worker = PEERS_SCRIPTS / f"peer_worker_{tool}.py"
    for attempt in range(2):  # a peer's worker fails now and then (its own temporary state); once more, then say why
        done = subprocess.run([str(python), str(worker), str(n)], capture_output=True, text=True, env=env)
        if done.returncode == 0:
            break
        if attempt:
            raise RuntimeError(f"{tool} worker failed twice (exit {done.returncode}):\n{done.stderr[-3000:]}")
    record = next(line for line in done.stdout.splitlines() if line.startswith("{"))  # Prefect logs to stdout too
    return float(json.loads(record)["run_s"])


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_in_daemon(daemon: Daemon, flow_id: str) -> float:
    """Seconds between the execution's own start and end (the engine's work, no HTTP or start-up)."""
    response = daemon.post(f"/api/v1/executions/bench/{flow_id}", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    response.raise_for_status()
    execution_id = response.json()["id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        row = daemon.api(f"/api/v1/executions/{execution_id}")
        if row["state"] in ("SUCCESS", "FAILED", "KILLED", "WARNING"):
            assert row["state"] == "SUCCESS", row
            return _seconds(row["ended_at"]) - _seconds(row["started_at"])
        time.sleep(0.2)  # the figure is the execution's own; polling less disturbs it less
    raise TimeoutError(f"execution {execution_id} of {flow_id} did not end\n{daemon.log_tail()}")


def marginal(times: dict[int, list[float]]) -> float:
    """ms per task between the two sizes, from medians."""
    big, small = statistics.median(times[SIZES[1]]), statistics.median(times[SIZES[0]])
    return (big - small) / (SIZES[1] - SIZES[0]) * 1000


def peer_pythons(folder: Path) -> dict[str, Path]:
    found = {}
    for tool in PUBLISHED:
        python = folder / f"venv-{tool}" / "bin" / "python"
        if python.exists() and (PEERS_SCRIPTS / f"peer_worker_{tool}.py").exists():
            found[tool] = python
    return found


def daemon_figures(work: Path, rounds: int) -> tuple[float, float]:
    """Marginal ms per task in the daemon: (first run of each chain, later runs)."""
    repo = GitRepo(work / "repo")
    repo.commit({f"flows/chain{n}d.yaml": chain(n, True) for n in SIZES}, "chains")
    source = {"name": "bench", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    daemon = start_daemon(work / "daemon", [source], env={"GITSYNC_API_TOKEN": TOKEN})
    try:
        daemon.wait_for(lambda: len(daemon.api("/api/v1/flows")) == len(SIZES), "the first sync", timeout=120)
        first: dict[int, list[float]] = {}
        later: dict[int, list[float]] = {}
        for n in SIZES:
            first[n] = [run_in_daemon(daemon, f"chain{n}d")]
        for _ in range(rounds):
            for n in SIZES:
                later.setdefault(n, []).append(run_in_daemon(daemon, f"chain{n}d"))
    finally:
        daemon.stop()
    return marginal(first), marginal(later)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", help="another checkout's python, run interleaved as the reference")
    parser.add_argument("--peers", default=os.environ.get("PERF_ROOT", "./peers-work"), help="bench-peers venvs")
    parser.add_argument("--skip-daemon", action="store_true")
    args = parser.parse_args()
    pythons = {"this checkout": sys.executable}
    if args.compare:
        pythons["compared"] = args.compare
    peers = peer_pythons(Path(args.peers).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        flows: dict[tuple[int, bool], Path] = {}
        for distinct in (True, False):
            for n in SIZES:
                path = work / f"chain{n}{'d' if distinct else 'r'}.yaml"
                path.write_text(chain(n, distinct))
                flows[(n, distinct)] = path
        runs: dict[str, Callable[[], float]] = {}
        for name, python in pythons.items():
            for (n, distinct), flow in flows.items():
                key = f"{name}|{'distinct' if distinct else 'repeated'}"
                runs[f"{key}|{n}"] = lambda python=python, flow=flow, key=key, n=n: run_cli(python, flow, work, key, n)
        for tool, python in peers.items():
            for n in SIZES:
                runs[f"{tool}|peer|{n}"] = lambda python=python, tool=tool, n=n: run_peer(python, tool, n, work)
        times: dict[str, dict[int, list[float]]] = {}
        for _ in range(args.rounds):
            for key, run in runs.items():
                name, kind, n = key.rsplit("|", 2)
                times.setdefault(f"{name}|{kind}", {}).setdefault(int(n), []).append(run())
        in_daemon = None if args.skip_daemon else daemon_figures(work, args.rounds)

    print(f"marginal ms per task between {SIZES[0]} and {SIZES[1]} tasks, medians of {args.rounds} (interleaved)")
    ours = marginal(times["this checkout|distinct"])
    for name in pythons:
        real, repeated = marginal(times[f"{name}|distinct"]), marginal(times[f"{name}|repeated"])
        startup = statistics.median(times[f"{name}|distinct"][SIZES[0]])
        cpu_real, cpu_repeated = marginal(CPU[f"{name}|distinct"]), marginal(CPU[f"{name}|repeated"])
        print(
            f"  gitsync run --file, {name}: a different expression in every task {real:.3f} ms/task "
            f"(target <= 0.3); one repeated expression {repeated:.3f} ms/task (ratio {real / repeated:.2f}x); "
            f"start-up and 10 tasks {startup:.2f} s; CPU time: {cpu_real:.3f} and {cpu_repeated:.3f} ms/task"
        )
    if args.compare:
        ratio = ours / marginal(times["compared|distinct"])
        cpu_ratio = marginal(CPU["this checkout|distinct"]) / marginal(CPU["compared|distinct"])
        print(f"  this checkout / compared, different expressions: {ratio:.2f}x (CPU time {cpu_ratio:.2f}x)")
    if in_daemon is not None:
        print(
            f"  the daemon, a different expression in every task: first run {in_daemon[0]:.3f} ms/task, "
            f"second run {in_daemon[1]:.3f} ms/task (target <= 0.15)"
        )
    for tool, (label, published) in PUBLISHED.items():
        if tool in peers:
            theirs = marginal(times[f"{tool}|peer"])
            name = label.split()[0]
            print(f"  {name} (measured in this run): {theirs:.3f} ms/task; gitsync is {theirs / ours:.1f}x faster")
        else:
            print(
                f"  {label}: {published} ms/task (published in bench-peers/README.md, not measured: no venv under "
                f"{args.peers}); gitsync is {published / ours:.1f}x faster"
            )


if __name__ == "__main__":
    main()
