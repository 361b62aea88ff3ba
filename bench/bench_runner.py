"""What the runner costs, each figure next to a reference measured in the same run, with the ratio.

1. A Sequential of 1,000 Return tasks (each returns the previous task's output), end to end through RunManager
   with every state persisted in a real SQLite file: ms per task (target <= 0.5). References: the plain-Python
   chain of /work/shared/bench-peers (the floor, always measured); Prefect 3 and Dagster with `--peers`
   (measured by bench_peers.py; otherwise their published figures are printed, labelled as such).
2. A shell task (shell.Commands `echo hi`, Process runner) end to end vs a bare
   `subprocess.run(['sh', '-c', 'echo hi'], capture_output=True)`, interleaved: ms per task and the ratio
   (target <= 1.3x). Measured both as N tasks of one execution and as one execution of one task; beside the
   latter, one execution of one Return task (what an execution costs around its task, no process). Then where
   the rest goes, interleaved: the mkdir of a task's working directory, and the shell task's process layer alone
   (`run_process`) against `Popen.communicate`, with its ratio: what the engine adds is the remainder.
3. A Parallel of 100 one-second Sleep tasks: wall time (target < 1.5 s; the floor is 1 s).
4. Memory: RSS before, and peak RSS while 50 executions (3 Return tasks and a 2-second Sleep each) run at once,
   started together through RunManager.start.

Flows are deployed by writing their source, flow and revision rows directly (what a sync writes); executions go
through RunManager.create and run/start, exactly as the daemon's. `--profile` prints cProfile's top functions
of items 1 and 2.

Run: .venv/bin/python bench/bench_runner.py [--rounds 5] [--peers] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitsync import state
from gitsync.compose import build_runs, load_registry
from gitsync.config import load_settings
from gitsync.executions.manager import RunManager
from gitsync.state.database import Store, now_iso
from plugins.scripts.process import run_process
from runner.api import LevelLogger, RunContext
from runner.storage import LocalStorage

PEERS_DIR = Path(os.environ.get("GITSYNC_BENCH_PEERS", "/work/shared/bench-peers"))
PERF_ROOT = Path(os.environ.get("PERF_ROOT", str(Path(tempfile.gettempdir()) / "gitsync-peers-work")))
PUBLISHED = {"Prefect 3.8.8": 7.1, "Dagster 1.13": 11.0}
"""ms per task at N=1000, from bench-peers/README.md (2026-11-24, 2 cores, medians of 5+ runs)."""
PUBLISHED_SH_MS = 1.5
RETURN = "io.kestra.plugin.core.debug.Return"
SHELL = "io.kestra.plugin.scripts.shell.Commands"
PROCESS = "io.kestra.plugin.core.runner.Process"
TARGET_RETURN_MS = 0.5
TARGET_SHELL_RATIO = 1.3
TARGET_PARALLEL_S = 1.5


# --- flows ---------------------------------------------------------------------------------------------------


def chain_flow(n: int) -> str:
    lines = [
        "id: chain",
        "namespace: bench",
        "tasks:",
        "  - id: seq",
        "    type: io.kestra.plugin.core.flow.Sequential",
    ]
    lines.append("    tasks:")
    for i in range(n):
        value = "0" if i == 0 else f"{{{{ outputs.t{i - 1:05d}.value }}}}"
        lines += [f"      - id: t{i:05d}", f"        type: {RETURN}", f'        format: "{value}"']
    return "\n".join(lines) + "\n"


def shell_flow(flow_id: str, n: int) -> str:
    lines = [f"id: {flow_id}", "namespace: bench", "tasks:"]
    for i in range(n):
        lines += [f"  - id: sh{i:03d}", f"    type: {SHELL}", "    taskRunner:", f"      type: {PROCESS}"]
        lines += ["    commands:", "      - echo hi"]
    return "\n".join(lines) + "\n"


def parallel_flow(n: int) -> str:
    lines = [
        "id: parallel",
        "namespace: bench",
        "tasks:",
        "  - id: par",
        "    type: io.kestra.plugin.core.flow.Parallel",
    ]
    lines.append("    tasks:")
    for i in range(n):
        lines += [f"      - id: s{i:03d}", "        type: io.kestra.plugin.core.flow.Sleep", "        duration: PT1S"]
    return "\n".join(lines) + "\n"


def memory_flow() -> str:
    lines = ["id: mem", "namespace: bench", "tasks:"]
    for i in range(3):
        lines += [f"  - id: r{i}", f"    type: {RETURN}", f'    format: "r{i} {{{{ execution.id }}}}"']
    lines += ["  - id: nap", "    type: io.kestra.plugin.core.flow.Sleep", "    duration: PT2S"]
    return "\n".join(lines) + "\n"


def deploy(store: Store, flows: dict[str, str]) -> None:
    """Write the rows a sync of these flows would write (one source, one commit)."""
    applied = now_iso()
    with store.atomic() as conn:
        state.upsert_source(conn, "bench", "bench-repo", "main", "flows", "bench", "c0")
        for flow_id, text in flows.items():
            row = state.RevisionRow(
                uid=f"bench.{flow_id}",
                namespace="bench",
                flow_id=flow_id,
                source="bench",
                commit="c0",
                path=f"flows/{flow_id}.yaml",
                blob=f"blob-{flow_id}",
                author="bench",
                message="bench",
                text=text,
                disabled=False,
            )
            state.write_revision(conn, row, applied)


# --- measuring -----------------------------------------------------------------------------------------------


@dataclass
class Bench:
    store: Store
    runs: RunManager
    rounds: int
    tasks: int
    shell_tasks: int

    def execute(self, flow_id: str) -> float:
        """Create and run one execution on this thread; its wall time. Fails unless it ended in SUCCESS."""
        t0 = time.perf_counter()
        execution_id = self.runs.create(f"bench.{flow_id}")
        self.runs.run(execution_id)
        wall = time.perf_counter() - t0
        row = self.store.query_one("SELECT state FROM executions WHERE id = ?", (execution_id,))
        assert row is not None and row["state"] == "SUCCESS", (flow_id, row)
        return wall

    def task_runs(self, flow_id: str) -> int:
        row = self.store.query_one(
            "SELECT count(*) AS n FROM task_runs WHERE execution_id = "
            "(SELECT id FROM executions WHERE flow_uid = ? ORDER BY id DESC LIMIT 1)",
            (f"bench.{flow_id}",),
        )
        return int(row["n"]) if row else 0


def median(values: list[float]) -> float:
    return statistics.median(values)


def bare_shell(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        done = subprocess.run(["sh", "-c", "echo hi"], capture_output=True, check=True)
        assert done.stdout == b"hi\n"
    return time.perf_counter() - t0


def plain_chain(n: int) -> dict[str, float]:
    """bench-peers' plain-Python chain (its own worker, in a fresh interpreter)."""
    worker = PEERS_DIR / "peer_worker_plain.py"
    done = subprocess.run([sys.executable, str(worker), str(n)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[0])


def line(label: str, value: str, reference: str = "", verdict: str = "") -> None:
    print(f"  {label:46s} {value:>14s}  {reference}{'  ' + verdict if verdict else ''}", flush=True)


def verdict(ok: bool, target: str) -> str:
    return f"[{'ok' if ok else 'OVER'}: target {target}]"


# --- items ---------------------------------------------------------------------------------------------------


def item_chain(bench: Bench, peers: dict[str, float] | None) -> None:
    n = bench.tasks
    print(f"\n1. Sequential of {n:,} Return tasks, end to end through RunManager + SQLite file", flush=True)
    bench.execute("chain")  # warm-up: parses and caches the revision, compiles the templates
    assert bench.task_runs("chain") == n + 1
    cpu0 = time.process_time()
    walls = [bench.execute("chain") for _ in range(bench.rounds)]
    cpu_ms = 1000 * (time.process_time() - cpu0) / (n * len(walls))
    ms = 1000 * median(walls) / n
    floors = [plain_chain(n)["per_task_ms"] for _ in range(3)]
    floor = median(floors)
    line(
        f"gitsync ms per task (median of {len(walls)})",
        f"{ms:.3f} ms",
        f"(min {1000 * min(walls) / n:.3f}, max {1000 * max(walls) / n:.3f})",
        verdict(ms <= TARGET_RETURN_MS, f"<= {TARGET_RETURN_MS} ms"),
    )
    line("  CPU time of this process per task (mean)", f"{cpu_ms:.3f} ms", "(steadier than wall on a loaded machine)")
    line("floor: plain Python chain (bench-peers)", f"{floor * 1000:.3f} us", f"gitsync = x{ms / floor:,.0f} floor")
    if peers:
        for name, peer_ms in peers.items():
            line(
                f"{name} (measured in this run)",
                f"{peer_ms:.3f} ms",
                f"gitsync = {ms / peer_ms:.3f}x ({peer_ms / ms:.1f}x faster)",
            )
    else:
        for name, peer_ms in PUBLISHED.items():
            line(
                f"{name} (published, not measured in this run)",
                f"{peer_ms:.3f} ms",
                f"gitsync = {ms / peer_ms:.3f}x ({peer_ms / ms:.1f}x faster)",
            )


def item_shell(bench: Bench) -> None:
    n = bench.shell_tasks
    print("\n2. shell.Commands `echo hi` (Process runner) vs bare subprocess.run(['sh','-c','echo hi'])", flush=True)
    bench.execute(f"shell{n}")
    bench.execute("shell1")
    bench.execute("return1")
    bare_shell(5)
    many, bare_many, one, bare_one, inline_one = [], [], [], [], []
    for _ in range(bench.rounds):
        many.append(bench.execute(f"shell{n}") / n)
        bare_many.append(bare_shell(n) / n)
        for _ in range(10):
            one.append(bench.execute("shell1"))
            bare_one.append(bare_shell(1))
            inline_one.append(bench.execute("return1"))
    ms_many, ref_many = 1000 * median(many), 1000 * median(bare_many)
    ms_one, ref_one = 1000 * median(one), 1000 * median(bare_one)
    target = f"<= {TARGET_SHELL_RATIO}x"
    line(f"{n} shell tasks in one execution, ms per task", f"{ms_many:.3f} ms", "")
    line(
        "  bare subprocess.run, ms per call",
        f"{ref_many:.3f} ms",
        f"ratio {ms_many / ref_many:.2f}x",
        verdict(ms_many / ref_many <= TARGET_SHELL_RATIO, target),
    )
    line("1 execution of 1 shell task, ms", f"{ms_one:.3f} ms", "")
    line(
        "  bare subprocess.run, ms per call",
        f"{ref_one:.3f} ms",
        f"ratio {ms_one / ref_one:.2f}x",
        verdict(ms_one / ref_one <= TARGET_SHELL_RATIO, target),
    )
    ms_inline = 1000 * median(inline_one)
    line(
        "  1 execution of 1 Return task (no process), ms",
        f"{ms_inline:.3f} ms",
        f"= {ms_inline / ref_one:.2f}x the bare call: what an execution costs around its task",
    )
    line("published sh -c 'echo hi' (bench-peers README)", f"{PUBLISHED_SH_MS:.3f} ms", "(not measured in this run)")
    shell_costs(bench.runs.data_dir / "bench-costs")


def _mkdir(folder: Path) -> None:
    (folder / uuid.uuid4().hex).mkdir(parents=True)


class _Quiet(LevelLogger):
    def log(self, level: str, message: str) -> None:
        pass


def _process_layer(folder: Path) -> None:
    """The shell task's own process layer alone (plugins/scripts/process.run_process: a new session, both pipes
    read on one thread, the group stopped at the end), without the engine around it."""
    ctx = RunContext(
        execution_id="bench",
        namespace="bench",
        flow_id="bench",
        flow_revision=1,
        task_id="sh",
        task_run_id="sh-1",
        attempt=1,
        workdir=folder,
        logger=_Quiet(),
        storage=LocalStorage(folder, "bench", "bench", "bench"),
        kv=None,  # type: ignore[arg-type]  # not read by run_process
    )
    run_process(ctx, ["sh", "-c", "echo hi"], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def _communicate(folder: Path) -> None:
    subprocess.Popen(["sh", "-c", "echo hi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder).communicate()


def shell_costs(folder: Path, reps: int = 100) -> None:
    """Where a shell task's time goes beyond the process itself (interleaved, same run): its working directory,
    and its process layer against the bare call; the rest is the engine's (render, hand-over, records)."""
    folder.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Callable[[Path], None]] = {
        "mkdir of a task's working directory": _mkdir,
        "the shell task's process layer alone": _process_layer,
        "  vs Popen.communicate": _communicate,
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(reps):
        for name, part in parts.items():
            t0 = time.perf_counter()
            part(folder)
            times[name].append(time.perf_counter() - t0)
    print(f"  where the rest goes (median of {reps}, this filesystem and load):")
    for name, values in times.items():
        line(f"  {name}", f"{1000 * median(values):.3f} ms")
    layer, bare = median(times["the shell task's process layer alone"]), median(times["  vs Popen.communicate"])
    line("  the process layer's ratio to the bare call", f"{layer / bare:.2f}x", "(the engine's share is the rest)")


def item_parallel(bench: Bench) -> None:
    print("\n3. Parallel of 100 one-second Sleep tasks", flush=True)
    walls = [bench.execute("parallel") for _ in range(max(1, min(bench.rounds, 3)))]
    wall = median(walls)
    line(
        "wall time (median)",
        f"{wall:.3f} s",
        f"floor 1.000 s, ratio {wall:.2f}x",
        verdict(wall < TARGET_PARALLEL_S, f"< {TARGET_PARALLEL_S} s"),
    )


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """Samples this process's RSS every 5 ms while it is open."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())


def item_memory(bench: Bench, executions: int = 50) -> None:
    print(f"\n4. Memory: {executions} executions at once (3 Return + a 2 s Sleep each), through RunManager.start")
    bench.execute("mem")
    before = rss_mb()
    threads_before = threading.active_count()
    peak_threads = threads_before
    with PeakRss() as peak:
        t0 = time.perf_counter()
        ids = [bench.runs.create("bench.mem") for _ in range(executions)]
        for execution_id in ids:
            bench.runs.start(execution_id)
        time.sleep(1.0)
        peak_threads = threading.active_count()
        for execution_id in ids:
            bench.runs.wait(execution_id, 30)
        wall = time.perf_counter() - t0
    states = {
        r["state"]
        for r in bench.store.query(f"SELECT state FROM executions WHERE id IN ({','.join('?' * len(ids))})", tuple(ids))
    }
    assert states == {"SUCCESS"}, states
    line("RSS before", f"{before:.1f} MB", "(interpreter + gitsync + the earlier items)")
    line(
        "peak RSS while running",
        f"{peak.peak:.1f} MB",
        f"+{peak.peak - before:.1f} MB, {1024 * (peak.peak - before) / executions:.0f} KB per execution",
    )
    line("threads while running", f"{peak_threads}", f"({threads_before} before)")
    line("wall time of the 50", f"{wall:.3f} s", "floor 2.000 s (the Sleep)")
    print("  published peers' peak RSS (bench-peers README, not measured here): Prefect 378 MB, Dagster 126 MB")


# --- peers ---------------------------------------------------------------------------------------------------


def peers(rounds: int) -> dict[str, float]:
    """Prefect 3 and Dagster per-task ms at N=1000, measured now by bench_peers.py (builds the venvs if missing)."""
    root = PERF_ROOT
    root.mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "PERF_ROOT": str(root)}
    if not all((root / f"venv-{name}/bin/python").exists() for name in ("blocks", "prefect", "dagster")):
        print(f"building the peers' venvs under {root} (several minutes) ...", flush=True)
        subprocess.run(["sh", str(PEERS_DIR / "setup_venvs.sh")], env=env, check=True)
    print(f"running bench_peers.py ({rounds} rounds) ...", flush=True)
    done = subprocess.run(
        [str(root / "venv-blocks/bin/python"), str(PEERS_DIR / "bench_peers.py"), str(rounds)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    found: dict[str, list[float]] = {}
    for text in done.stdout.splitlines():
        if not text.startswith("{"):
            continue
        record = json.loads(text)
        if record.get("n") == 1000 and "error" not in record and record.get("tool") in ("prefect", "dagster"):
            found.setdefault(f"{record['tool']} {record.get('version', '')}".strip(), []).append(record["per_task_ms"])
    return {name: median(values) for name, values in found.items()}


# --- main ----------------------------------------------------------------------------------------------------


def profiled(label: str, enabled: bool, run: Callable[[], None]) -> None:
    if not enabled:
        run()
        return
    profile = cProfile.Profile()
    profile.enable()
    run()
    profile.disable()
    print(f"\n--- cProfile of {label} (top 25 by own time) ---")
    pstats.Stats(profile).sort_stats("tottime").print_stats(25)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured repetitions of each figure")
    parser.add_argument("--tasks", type=int, default=1000, help="Return tasks in the chain")
    parser.add_argument("--shell-tasks", type=int, default=20, help="shell tasks in one execution")
    parser.add_argument("--peers", action="store_true", help="measure Prefect 3 and Dagster now (builds venvs)")
    parser.add_argument("--peer-rounds", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile items 1 and 2 (slower figures)")
    parser.add_argument("--only", default="1234", help="items to run, e.g. 12")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    measured = peers(args.peer_rounds) if args.peers and "1" in args.only else None
    with tempfile.TemporaryDirectory(prefix="gitsync-bench-runner-") as tmp:
        root = Path(tmp)
        store = Store(root / "state.db")
        deploy(
            store,
            {
                "chain": chain_flow(args.tasks),
                f"shell{args.shell_tasks}": shell_flow(f"shell{args.shell_tasks}", args.shell_tasks),
                "shell1": shell_flow("shell1", 1),
                "return1": f"id: return1\nnamespace: bench\ntasks:\n  - id: r\n    type: {RETURN}\n    format: hi\n",
                "parallel": parallel_flow(100),
                "mem": memory_flow(),
            },
        )
        settings = load_settings(None, {"db": str(root / "state.db"), "data_dir": str(root / "data")})
        runs = build_runs(store, settings, load_registry(), status_sources=None)
        bench = Bench(store, runs, args.rounds, args.tasks, args.shell_tasks)
        print(
            f"gitsync runner bench: python {sys.version.split()[0]}, {os.cpu_count()} cpus, state {root / 'state.db'}"
        )
        t0 = time.perf_counter()
        try:
            if "1" in args.only:
                profiled("item 1", args.profile, lambda: item_chain(bench, measured))
            if "2" in args.only:
                profiled("item 2", args.profile, lambda: item_shell(bench))
            if "3" in args.only:
                item_parallel(bench)
            if "4" in args.only:
                item_memory(bench)
        finally:
            runs.shutdown()
            store.close()
        print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
