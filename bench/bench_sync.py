"""Sync figures, each printed with its reference measured in the same run.

1. First sync of a 10,000-flow repository (in-process `sync_source` on a local-path source), against a bare
   `load_flow_sources` of the same 10,000 files (the parse + validate floor).
2. A one-file commit synced on a 1,000-flow and on a 10,000-flow repository (warm, in-process): median of N.
   Targets: <= 100 ms, and the two within 1.5x of each other (invariant 2: cost follows the change, not the repo).
3. Push-to-trigger-registered latency through the daemon subprocess (p50/p95 of N samples; target p95 <= 1 s):
   webhook: commit + publish to a smart HTTP server, POST a signed GitHub push payload, poll /api/v1/triggers;
   watcher: commit to a local repository, poll /api/v1/triggers.

Run: .venv/bin/python bench/bench_sync.py [--flows 10000] [--samples 25] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from daemon_harness import Daemon, github_headers, github_push_payload, start_daemon
from flowgen import flow_text, write_flows
from gitgen import commit_files, flow_repo
from gitservers import GitRepo, http_git_server

from gitsync.compose import load_registry
from gitsync.config import SourceConfig
from gitsync.flows.loader import load_flow_sources
from gitsync.state.database import Store
from gitsync.sync.apply import sync_source
from runner.registry import Registry

SECRET_ENV, SECRET = "GITSYNC_BENCH_SECRET", "bench-webhook-secret"
TOKEN_ENV, TOKEN = "GITSYNC_BENCH_TOKEN", "bench-git-token"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="gitsync sync figures")
    parser.add_argument("--flows", type=int, default=10_000, help="flows of the large repository")
    parser.add_argument("--small", type=int, default=1_000, help="flows of the small repository")
    parser.add_argument("--samples", type=int, default=25, help="samples of each latency")
    parser.add_argument("--commits", type=int, default=15, help="one-file commits timed per repository")
    parser.add_argument("--latency-flows", type=int, default=1_000, help="flows in the daemon's repository")
    parser.add_argument("--profile", action="store_true", help="cProfile the one-file syncs and print the top")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-syncs", action="store_true", help="only the latency through the daemon")
    return parser.parse_args()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- 1 and 2: in-process syncs --------------------------------------------------------------------------------------


class LocalRepo:
    """A gitgen repository of `count` flows, a state file and a cache: a local-path source synced in-process."""

    def __init__(self, root: Path, count: int, registry: Registry) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.repo, self.files, self.head = flow_repo(root / "repo", count)
        self.store = Store(root / "state.db")
        self.data_dir = root / "data"
        self.registry = registry
        self.source = SourceConfig(name="bench", repo=str(root / "repo"), branch="main", path="flows")
        self.edits = 0

    def sync(self) -> float:
        started = time.perf_counter()
        result = sync_source(self.store, self.source, self.data_dir, self.registry)
        elapsed = time.perf_counter() - started
        assert result.outcome == "applied", (result.outcome, result.summary, result.errors[:3])
        return elapsed

    def commit_one_file(self) -> None:
        self.edits += 1
        path = next(iter(self.files))
        self.files[path] = flow_text(0).replace("Hello from", f"Edit {self.edits} from").encode()
        self.head = commit_files(self.repo, self.files, f"edit {self.edits}", parent=self.head)

    def close(self) -> None:
        self.store.close()
        self.repo.close()


def first_sync(root: Path, count: int, registry: Registry) -> LocalRepo:
    local = LocalRepo(root, count, registry)
    items = [(path.removeprefix("flows/"), data) for path, data in local.files.items()]
    load_flow_sources(items, registry)  # warm the registry and the models
    started = time.perf_counter()
    loaded = load_flow_sources(items, registry)
    bare = time.perf_counter() - started
    assert sum(1 for f in loaded.files if f.flow is not None) == count
    seconds = local.sync()
    flows = local.store.query_one("SELECT count(*) AS n FROM flows")
    assert flows is not None and flows["n"] == count
    print(f"first sync of {count:,} flows: {seconds:.2f} s ({count / seconds:,.0f} flows/s)")
    print(
        f"  reference, bare load_flow_sources of the same {count:,} files: {bare:.2f} s ({count / bare:,.0f} flows/s)"
    )
    print(f"  ratio first sync / bare load: {seconds / bare:.2f}x")
    return local


def one_file_syncs(local: LocalRepo, commits: int, profiler: cProfile.Profile | None) -> float:
    for _ in range(3):  # warm: caches, pages, the first incremental path
        local.commit_one_file()
        local.sync()
    times = []
    for _ in range(commits):
        local.commit_one_file()
        if profiler is not None:
            profiler.enable()
        times.append(local.sync())
        if profiler is not None:
            profiler.disable()
    return statistics.median(times)


def print_profile(label: str, profiler: cProfile.Profile, top: int = 25) -> None:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"\n--- cProfile of the one-file syncs on {label} (cumulative) ---")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


# -- 3: latency through the daemon --------------------------------------------------------------------------------


def trigger_flow(n: int) -> str:
    return f"""\
id: latency_{n}
namespace: bench.latency
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "{n % 60} * * * *"
"""


def wait_registered(daemon: Daemon, uid: str, started: float, timeout: float = 60.0) -> float:
    """Poll /api/v1/triggers (every 10 ms) until `uid` shows; seconds since `started`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(t["uid"] == uid for t in daemon.api("/api/v1/triggers")):
            return time.perf_counter() - started
        time.sleep(0.01)
    raise TimeoutError(f"{uid} not registered within {timeout}s\n{daemon.log_tail()}")


def seed_work_repo(path: Path, count: int) -> GitRepo:
    repo = GitRepo(path)
    write_flows(path / "flows", count)
    repo.commit({}, f"{count} flows")
    return repo


@contextmanager
def webhook_setup(root: Path, count: int) -> Iterator[tuple[Daemon, GitRepo, Path, str]]:
    served = root / "srv"
    served.mkdir(parents=True)
    work = seed_work_repo(root / "work-hook", count)
    work.publish(served, "flows")
    with http_git_server(served, token=TOKEN) as base:
        url = f"{base}/flows.git"
        source = {
            "name": "main",
            "repo": url,
            "branch": "main",
            "path": "flows",
            "poll": "1h",
            "token_env": TOKEN_ENV,
            "webhook_secret_env": SECRET_ENV,
        }
        daemon = start_daemon(root / "daemon-hook", [source], env={TOKEN_ENV: TOKEN, SECRET_ENV: SECRET})
        try:
            daemon.wait_for(lambda: len(daemon.api("/api/v1/flows")) == count, "the first sync", timeout=300)
            yield daemon, work, served, url
        finally:
            daemon.stop()


def webhook_latency(root: Path, count: int, samples: int) -> tuple[list[float], list[float]]:
    """(push start -> registered, webhook POST -> registered) per sample."""
    from_push, from_post = [], []
    with webhook_setup(root, count) as (daemon, work, served, url):
        for n in range(samples + 2):
            started = time.perf_counter()
            commit = work.commit({f"flows/latency/latency_{n}.yaml": trigger_flow(n)}, f"latency {n}")
            work.publish(served, "flows")
            posted = time.perf_counter()
            body = github_push_payload(url, commit)
            response = daemon.post(
                "/webhooks/github", content=body, headers=github_headers(body, SECRET, str(uuid.uuid4()))
            )
            assert response.status_code == 202, response.text
            total = wait_registered(daemon, f"bench.latency.latency_{n}/hourly", started)
            if n >= 2:  # the first two warm the daemon's incremental path
                from_push.append(total)
                from_post.append(total - (posted - started))
    return from_push, from_post


def watcher_latency(root: Path, count: int, samples: int) -> list[float]:
    work = seed_work_repo(root / "work-watch", count)
    source = {"name": "main", "repo": str(work.path), "branch": "main", "path": "flows", "poll": "1h"}
    daemon = start_daemon(root / "daemon-watch", [source])
    latencies = []
    try:
        daemon.wait_for(lambda: len(daemon.api("/api/v1/flows")) == count, "the first sync", timeout=300)
        for n in range(samples + 2):
            started = time.perf_counter()
            work.commit({f"flows/latency/latency_{n}.yaml": trigger_flow(n)}, f"latency {n}")
            total = wait_registered(daemon, f"bench.latency.latency_{n}/hourly", started)
            if n >= 2:
                latencies.append(total)
    finally:
        daemon.stop()
    return latencies


def print_latency(label: str, values: list[float], note: str = "") -> None:
    p95 = pct(values, 0.95)
    verdict = "met" if p95 <= 1.0 else "NOT met"
    print(
        f"{label}: p50 {ms(statistics.median(values))}, p95 {ms(p95)}, max {ms(max(values))} "
        f"({len(values)} samples; target p95 <= 1 s: {verdict}){note}"
    )


# -- main ---------------------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    registry = load_registry()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="gitsync-bench-") as tmp:
        root = Path(tmp)
        if not args.skip_syncs:
            in_process(root, args, registry)
        if not args.skip_latency:
            latency(root, args)


def in_process(root: Path, args: argparse.Namespace, registry: Registry) -> None:
    large = first_sync(root / "large", args.flows, registry)
    small = LocalRepo(root / "small", args.small, registry)
    small.sync()
    profilers = {n: cProfile.Profile() if args.profile else None for n in (args.small, args.flows)}
    small_ms = one_file_syncs(small, args.commits, profilers[args.small])
    large_ms = one_file_syncs(large, args.commits, profilers[args.flows])
    ratio = large_ms / small_ms
    print(f"one-file commit synced (median of {args.commits}, warm, in-process):")
    print(f"  {args.small:,} flows: {ms(small_ms)}   {args.flows:,} flows: {ms(large_ms)}")
    fast = "met" if max(small_ms, large_ms) <= 0.1 else "NOT met"
    flat = "met" if ratio <= 1.5 else "NOT met"
    print(f"  target <= 100 ms: {fast}; ratio {args.flows:,} / {args.small:,}: {ratio:.2f}x (target <= 1.5x: {flat})")
    for count, profiler in profilers.items():
        if profiler is not None:
            print_profile(f"{count:,} flows", profiler)
    small.close()
    large.close()


def latency(root: Path, args: argparse.Namespace) -> None:
    from_push, from_post = webhook_latency(root / "hook", args.latency_flows, args.samples)
    print(f"push-to-trigger-registered, {args.latency_flows:,}-flow repository, daemon subprocess:")
    print_latency("  webhook (commit + publish + POST -> registered)", from_push)
    print_latency("  webhook (POST -> registered)", from_post)
    pushes = [a - b for a, b in zip(from_push, from_post, strict=True)]
    print(f"    of which commit + publish (git CLI): p50 {ms(statistics.median(pushes))}")
    print_latency("  watcher (commit -> registered)", watcher_latency(root / "watch", args.latency_flows, args.samples))


if __name__ == "__main__":
    main()
