"""Scheduler benchmark: 10,000 Schedule triggers (daily crons + N every-second ones) on a real SQLite file.

    .venv/bin/python bench/bench_triggers.py [--seconds 20] [--every-second 100 10000]

Prints the process RSS and the fire lag (execution row written minus scheduled time: `created_at` is taken
just before the commit of the batch) as p50/p95/p99/max, and as reference the lag of a bare time.sleep loop.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gitsync import state
from gitsync.schedule.timer import Scheduler
from gitsync.state.database import Store, iso

SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"
TOTAL = 10_000


def populate(store: Store, every_second: int) -> None:
    registered = iso(datetime.now(UTC))
    with store.atomic() as conn:
        state.upsert_source(conn, "bench", "repo", "main", "", "", "c0")
        for i in range(TOTAL):
            uid = f"bench.f{i:05d}"
            conn.execute(
                "INSERT INTO flows (uid, source, namespace, id, revision, commit_sha, path, blob) "
                "VALUES (?, 'bench', 'bench', ?, 1, 'c0', 'p', 'b')",
                (uid, f"f{i:05d}"),
            )
            if i < every_second:
                cron, seconds = "*/1 * * * * *", True
            else:
                cron, seconds = f"{i % 60} {i % 24} * * *", False
            row = state.TriggerRow(f"{uid}/t", uid, "t", SCHEDULE, {"cron": cron}, cron, seconds, None, False)
            state.upsert_trigger(conn, row, registered)


class LagProbe:
    """Lag of each fire as seen by on_fire (the row was committed before on_fire runs)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lags: list[float] = []
        self.ids: list[str] = []
        self.recording = False  # fires recovered by start() are catch-up, not timer lag

    def __call__(self, execution_id: str) -> None:
        if not self.recording:
            return
        self.ids.append(execution_id)
        self.lags.append(time.time())


def measure_lags(store: Store, probe: LagProbe) -> list[float]:
    scheduled = {
        row["id"]: datetime.fromisoformat(row["scheduled_at"]).timestamp()
        for row in store.query("SELECT id, scheduled_at FROM executions")
    }
    return sorted(seen - scheduled[eid] for eid, seen in zip(probe.ids, probe.lags, strict=True) if eid in scheduled)


def sleep_loop_lags(duration: float) -> list[float]:
    """Reference: a bare loop sleeping until each whole second, measured against that second."""
    lags: list[float] = []
    end = time.time() + duration
    while time.time() < end:
        target = int(time.time()) + 1
        time.sleep(max(0.0, target - time.time()))
        lags.append(time.time() - target)
    return sorted(lags)


def rss_mb() -> tuple[float, float]:
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def figures(name: str, lags: list[float]) -> str:
    if not lags:
        return f"{name}: no fires"
    ms = [lag * 1000 for lag in lags]

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(len(ms) * p))]

    return (
        f"{name}: n={len(ms)} p50={pct(0.5):.1f} ms p95={pct(0.95):.1f} ms p99={pct(0.99):.1f} ms max={ms[-1]:.1f} ms"
    )


def run(every_second: int, seconds: float, folder: Path) -> None:
    store = Store(folder / f"bench-{every_second}.db")
    started = time.perf_counter()
    populate(store, every_second)
    print(f"\n== {TOTAL} Schedule triggers, {every_second} every second, {seconds:.0f} s ==")
    print(f"populate: {time.perf_counter() - started:.2f} s")
    probe = LagProbe(store)
    scheduler = Scheduler(store, on_fire=probe)
    started = time.perf_counter()
    scheduler.start()
    print(f"start (recovery + {len(scheduler.job_ids)} timer jobs): {time.perf_counter() - started:.2f} s")
    probe.recording = True
    time.sleep(seconds)
    scheduler.shutdown()
    written = store.query_one("SELECT count(*) AS n FROM executions")
    print(f"executions written: {written['n'] if written else 0} (expected about {int(every_second * seconds)})")
    print(figures("fire lag (row committed - scheduled)", measure_lags(store, probe)))
    current, peak = rss_mb()
    print(f"RSS now {current:.0f} MB, peak {peak:.0f} MB")
    dupes = store.query_one(
        "SELECT count(*) AS n FROM (SELECT 1 FROM executions GROUP BY trigger_uid, scheduled_at HAVING count(*) > 1)"
    )
    print(f"duplicate (trigger, time) rows: {dupes['n'] if dupes else 0}")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--every-second", type=int, nargs="+", default=[100, 10_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for count in args.every_second:
            run(count, args.seconds, Path(folder))
    print("\n== reference: bare time.sleep loop ==")
    print(figures("sleep-loop lag", sleep_loop_lags(min(args.seconds, 10.0))))


if __name__ == "__main__":
    main()
