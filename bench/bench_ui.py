"""UI and API figures on a big database (issue 13, point 3), each next to references measured in the same run.

The state is bench/seed_big.py's (10,000 flows, 100,000 executions with their task runs and logs, one execution
with 1,000 task runs; built once and cached). A copy of it is served by the real daemon (`gitsync daemon`, a
subprocess, following the seed's own repository, so its start-up sync finds nothing to do). Before the daemon
opens the copy, its Schedule triggers' bookkeeping is set to now: a cache seeded yesterday must not make the
daemon recover a night of missed fires while it is measured.

Each page is requested over HTTP/1.1 keep-alive on 127.0.0.1: time to first byte (the response's status line and
headers arrived) and the whole response, p50 and p95 of `--samples` requests after `--warmup`, the pages taken
in turn in each round so that any drift of the machine's load falls on all of them alike. References: `/healthz`
(what any answer of the daemon costs) and a static asset.

Targets (TTFB p95): dashboard <= 100 ms; executions list with filters <= 150 ms (the page and the API, its
cursor's page 2 included); an execution with 1,000 task runs <= 300 ms (the page and the API). A route that does
not answer yet (404, or an API without a cursor) prints "not built yet".

`--explain` then requests each page once more with every SQL statement of the daemon traced, runs each distinct
statement again against the same database (timed, best of 3) and prints the slowest with their query plans.

Run: .venv/bin/python bench/bench_ui.py [--samples 60] [--warmup 5] [--explain] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from daemon_harness import PYTHON, Daemon, daemon_env, write_config
from gitservers import free_port
from seed_big import Seeded, seeded

TARGETS_MS = {"dashboard": 100.0, "list": 150.0, "execution": 300.0}


@dataclass
class Page:
    label: str
    path: str | None
    """None: not built yet (the reason in `missing`)."""
    target: str | None = None
    """A key of TARGETS_MS, or None for a reference."""
    missing: str = ""
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    size: int = 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="gitsync UI and API figures on a big database")
    parser.add_argument("--samples", type=int, default=60, help="timed requests of each page (>= 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests of each page first")
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--rebuild", action="store_true", help="seed the database again (else the cache)")
    parser.add_argument("--explain", action="store_true", help="trace the daemon's SQL, print the slowest plans")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (its path is printed)")
    return parser.parse_args()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the daemon on a copy of the seeded state ---------------------------------------------------------------------


TRACE_CODE = """\
import os, runpy, sqlite3, sys, threading
_path, _lock, _connect = os.environ["GITSYNC_BENCH_SQL_TRACE"], threading.Lock(), sqlite3.connect
def _traced(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    def write(sql):
        with _lock, open(_path, "a", encoding="utf-8") as out:
            out.write(threading.current_thread().name.replace("\\t", " ") + "\\t" + sql.replace("\\n", " ") + "\\n")
    conn.set_trace_callback(write)
    return conn
sqlite3.connect = _traced
sys.argv = ["gitsync", *sys.argv[1:]]
runpy.run_module("gitsync", run_name="__main__", alter_sys=True)
"""
"""`python -c` that runs the daemon with every statement of every SQLite connection appended to a file."""


def prepare(seed: Seeded, work: Path) -> Path:
    """A copy of the seeded state in `work` (the daemon's folder); returns the database's path."""
    db = work / "gitsync.db"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(seed.db, db)
    shutil.copytree(seed.data_dir, work / "data")
    conn = sqlite3.connect(db)  # bench-only: the schedule bookkeeping as if a daemon had run until now
    with conn:
        conn.execute("UPDATE triggers SET last_scheduled_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')")
    conn.close()
    return db


@contextmanager
def daemon_on(seed: Seeded, work: Path, trace: Path | None = None) -> Iterator[Daemon]:
    port = free_port()
    source = {"name": "bench", "repo": seed.repo, "branch": "main", "path": "flows", "poll": "1h"}
    config = write_config(work, [source], port)
    log_path = work / "daemon.log"
    python = [PYTHON, "-m", "gitsync"] if trace is None else [PYTHON, "-c", TRACE_CODE]
    command = [*python, "daemon", "--config", str(config), "--log-level", "WARNING"]
    env = daemon_env({"GITSYNC_BENCH_SQL_TRACE": str(trace)} if trace else None)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    daemon = Daemon(proc, port, work / "gitsync.db", work / "data", log_path, config, env)
    try:
        daemon.wait_for(lambda: daemon.health().json().get("phase") == "running", "the start-up sync", timeout=300)
        yield daemon
    finally:
        daemon.stop()


# -- the pages ----------------------------------------------------------------------------------------------------


def built(client: httpx.Client, path: str) -> str:
    """'' when `path` answers 200; else why not (for "not built yet")."""
    response = client.get(path)
    if response.status_code == 200:
        return ""
    if response.status_code == 404:
        return "not built yet (404)"
    return f"answers {response.status_code}: {response.text[:120]!r}"


def pages(client: httpx.Client, seed: Seeded) -> list[Page]:
    namespace = seed.busy_namespace
    filters = urlencode({"state": "FAILED", "namespace": namespace})
    window = urlencode({"trigger_kind": "schedule", "since": days_ago(10), "until": days_ago(9)})
    flow = f"{namespace}.flow_00009"
    big = seed.big_execution
    out = [
        Page("/healthz (reference)", "/healthz"),
        Page("static asset (reference)", None),
        Page("dashboard /", "/", "dashboard"),
        Page("/api/v1/dashboard (its view as JSON)", "/api/v1/dashboard", "dashboard"),
        Page(f"/executions?{filters}", f"/executions?{filters}", "list"),
        Page(f"/api/v1/executions?{filters}", f"/api/v1/executions?{filters}", "list"),
        Page("/api/v1/executions?... cursor page 2", None, "list"),
        Page(f"/api/v1/executions?namespace={namespace}", f"/api/v1/executions?namespace={namespace}", "list"),
        Page("/api/v1/executions?trigger_kind=schedule&<one day 9 days ago>", f"/api/v1/executions?{window}", "list"),
        Page(f"/api/v1/executions?flow={flow}&state=SUCCESS", f"/api/v1/executions?flow={flow}&state=SUCCESS", "list"),
        Page(
            "/api/v1/executions?trigger_kind=subflow (none: reads them all)",
            "/api/v1/executions?trigger_kind=subflow",
            "list",
        ),
        Page("/executions/{id} (1,000 task runs)", f"/executions/{big}", "execution"),
        Page("/api/v1/executions/{id} (1,000 task runs)", f"/api/v1/executions/{big}", "execution"),
        Page(f"/namespaces/{namespace} (500 flows)", f"/namespaces/{namespace}"),
        Page(f"/flows/{namespace}/flow_00009", f"/flows/{namespace}/flow_00009"),
        Page(f"/api/v1/flows?namespace={namespace}", f"/api/v1/flows?namespace={namespace}"),
        Page("/api/v1/triggers (3,334 triggers, first page)", "/api/v1/triggers"),
        Page(f"/api/v1/flows/{namespace}/flow_00009", f"/api/v1/flows/{namespace}/flow_00009"),
        Page("/api/v1/executions/{id}/logs (1,000 task runs)", f"/api/v1/executions/{big}/logs"),
        Page("/syncs", "/syncs"),
        Page("/api/v1/syncs", "/api/v1/syncs"),
        Page("/triggers", "/triggers"),
    ]
    for page in out:
        if page.path is not None and (why := built(client, page.path)):
            page.path, page.missing = None, why
    dashboard = out[2]
    out[1].path, out[1].missing = static_asset(client) if dashboard.path else (None, "not built yet (no dashboard)")
    api_list, second = out[5], out[6]
    if api_list.path is None:
        second.missing = "not built yet (no list)"
    else:
        body = client.get(api_list.path).json()
        cursor = body.get("next_cursor") if isinstance(body, dict) else None
        if cursor:
            second.path = f"/api/v1/executions?{filters}&{urlencode({'cursor': cursor})}"
        else:
            second.missing = "not built yet (no next_cursor on page 1)"
    return out


def days_ago(days: int) -> str:
    moment = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    return moment.isoformat()


def static_asset(client: httpx.Client) -> tuple[str | None, str]:
    """The first local stylesheet or script the dashboard links to."""
    html = client.get("/").text
    match = re.search(r"""(?:href|src)=["'](/static/[^"'?#]+)""", html)
    if not match:
        return None, "not built yet (the dashboard links no /static/ asset)"
    why = built(client, match.group(1))
    return (None, why) if why else (match.group(1), "")


def measure(client: httpx.Client, todo: list[Page], samples: int, warmup: int) -> None:
    for round_ in range(warmup + samples):
        for page in todo:
            assert page.path is not None
            started = time.perf_counter()
            with client.stream("GET", page.path) as response:
                first = time.perf_counter()
                body = response.read()
            ended = time.perf_counter()
            if response.status_code != 200:
                raise AssertionError(f"{page.path} answered {response.status_code}: {body[:300]!r}")
            if round_ >= warmup:
                page.ttfb.append(first - started)
                page.total.append(ended - started)
                page.size = len(body)


def report(all_pages: list[Page], samples: int) -> None:
    reference = next(p for p in all_pages if p.path == "/healthz")
    ref_p50 = statistics.median(reference.ttfb)
    print(f"\n{'page':<66} {'TTFB p50':>9} {'p95':>9} {'total p95':>10} {'bytes':>9}  x healthz p50  target")
    for page in all_pages:
        if page.path is None:
            print(f"{page.label:<66} {page.missing}")
            continue
        p50, p95, total = statistics.median(page.ttfb), pct(page.ttfb, 0.95), pct(page.total, 0.95)
        verdict = ""
        if page.target:
            limit = TARGETS_MS[page.target]
            verdict = f"p95 <= {limit:.0f} ms: {'PASS' if p95 * 1000 <= limit else 'MISS'}"
        print(
            f"{page.label:<66} {p50 * 1000:7.1f}ms {p95 * 1000:7.1f}ms {total * 1000:8.1f}ms {page.size:>9,}"
            f"  {p50 / ref_p50:10.1f}x  {verdict}"
        )
    print(f"({samples} timed requests of each page, after the warm-up; keep-alive, one client, 127.0.0.1)")
    stall = statistics.median(b - a for a, b in zip(reference.ttfb, reference.total, strict=True))
    if stall > 0.030:
        print(
            f"note: /healthz's body arrives {stall * 1000:.0f} ms after its head (p50): the server's second small "
            "write waits for the client's delayed ACK (Nagle); its sockets lack TCP_NODELAY"
        )


# -- --explain: the SQL the pages ran, timed again, and its plans ------------------------------------------------


def explain(seed: Seeded, root: Path, measured: list[Page]) -> None:
    work = root / "explain"
    trace = work / "sql.trace"
    db = prepare(seed, work)
    with daemon_on(seed, work, trace) as daemon:
        for page in measured:
            assert page.path is not None
            daemon.client.get(page.path)  # warm
            offset = trace.stat().st_size if trace.exists() else 0
            response = daemon.client.get(page.path)
            assert response.status_code == 200, (page.path, response.status_code)
            time.sleep(0.2)  # the trace file is appended by the daemon's threads: let the last lines land
            page_sql = statements(trace, offset)
            print(f"\n== {page.label}: {len(page_sql)} statements on request threads")
            timed = sorted(((best_of(db, sql), sql) for sql in dict.fromkeys(page_sql)), reverse=True)
            for seconds, sql in timed[:4]:
                print(f"  {seconds * 1000:8.2f} ms  {sql[:300]}")
                for line in plan(db, sql):
                    print(f"               {line}")


def statements(trace: Path, offset: int) -> list[str]:
    with trace.open(encoding="utf-8") as lines:
        lines.seek(offset)
        rows = [line.rstrip("\n").split("\t", 1) for line in lines]
    keep = ("SELECT", "WITH")
    return [sql for thread, sql in rows if "AnyIO" in thread and sql.lstrip().upper().startswith(keep)]


def best_of(db: Path, sql: str, runs: int = 3) -> float:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        best = float("inf")
        for _ in range(runs):
            started = time.perf_counter()
            conn.execute(sql).fetchall()
            best = min(best, time.perf_counter() - started)
        return best
    except sqlite3.Error:
        return 0.0
    finally:
        conn.close()


def plan(db: Path, sql: str) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    except sqlite3.Error as exc:
        return [f"(no plan: {exc})"]
    finally:
        conn.close()


# -- main ---------------------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    if args.samples < 50:
        raise SystemExit("--samples must be at least 50 (p95 of fewer says little)")
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    started = time.perf_counter()
    seed = seeded(args.flows, args.executions, rebuild=args.rebuild)
    print(
        f"seeded state: {seed.flows:,} flows, {seed.executions:,} executions, {seed.task_runs:,} task runs, "
        f"{seed.logs:,} logs ({Path(seed.db).stat().st_size / 2**20:,.0f} MiB; "
        f"{'built in ' + str(seed.seconds) + ' s' if time.perf_counter() - started > 1 else 'from the cache'}: "
        f"{seed.root})"
    )
    root = Path(tempfile.mkdtemp(prefix="gitsync-bench-ui-"))
    try:
        work = root / "daemon"
        prepare(seed, work)
        with daemon_on(seed, work) as daemon:
            all_pages = pages(daemon.client, seed)
            todo = [p for p in all_pages if p.path is not None]
            before = daemon.query("SELECT count(*) AS n FROM executions")[0]["n"]
            measure(daemon.client, todo, args.samples, args.warmup)
            fired = daemon.query("SELECT count(*) AS n FROM executions")[0]["n"] - before
        report(all_pages, args.samples)
        if fired:
            print(f"note: {fired} executions were created while measuring (a schedule came due)")
        if args.explain:
            explain(seed, root, [p for p in todo if p.target])
    finally:
        if args.keep:
            print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
