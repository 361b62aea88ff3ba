"""Scheduler benchmark: 10,000 Schedule triggers (daily crons + N every-second ones) on a real SQLite file.

    .venv/bin/python bench/bench_triggers.py [--seconds 20] [--every-second 100 10000] [--history 0]

`--history N` gives each trigger N ended (SUCCESS) runs before the start, as a daemon whose runs end has: the
overlap check of each fire must not walk them.

Prints the process RSS and the fire lag as p50/p95/p99/max, each beside the same figure of the reference, a bare
time.sleep loop waking at each whole second (run first, in the same process), with the ratio. Two lags: when
`on_fire` saw the execution (its row committed) minus its scheduled time, and the row's `created_at` minus its
scheduled time (`created_at` is the moment the fires were decided, in their transaction).
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


def populate(store: Store, every_second: int, history: int = 0) -> None:
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
        if history:
            conn.execute(
                f"""WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {int(history)})
                    INSERT INTO executions (id, flow_uid, revision, commit_sha, source, state, trigger_kind,
                                            trigger_uid, scheduled_at, created_at, ended_at)
                    SELECT t.uid || '-' || k, t.flow_uid, 1, 'c0', 'bench', 'SUCCESS', 'schedule', t.uid,
                           '2000-01-01T' || printf('%08d', k), '2000-01-01', '2000-01-01' FROM triggers t, n"""
            )


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


def measure_lags(store: Store, probe: LagProbe, started: float) -> tuple[list[float], str]:
    """The lags, and the three slowest scheduled seconds (seconds after start() returned: worst lag in ms)."""
    scheduled = {
        row["id"]: datetime.fromisoformat(row["scheduled_at"]).timestamp()
        for row in store.query("SELECT id, scheduled_at FROM executions")
    }
    worst: dict[float, float] = {}
    lags = []
    for eid, seen in zip(probe.ids, probe.lags, strict=True):
        if eid in scheduled:
            lag = seen - scheduled[eid]
            lags.append(lag)
            worst[scheduled[eid]] = max(worst.get(scheduled[eid], 0.0), lag)
    slowest = sorted(worst.items(), key=lambda item: -item[1])[:3]
    return sorted(lags), ", ".join(f"+{at - started:.1f}s: {lag * 1000:.0f}" for at, lag in slowest)


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


QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))


def quantiles(lags: list[float]) -> dict[str, float]:
    ms = [lag * 1000 for lag in lags]
    return {name: ms[min(len(ms) - 1, int(len(ms) * q))] for name, q in QUANTILES} if ms else {}


def figures(name: str, lags: list[float], reference: dict[str, float] | None = None) -> str:
    if not lags:
        return f"{name}: no fires"
    parts = []
    for key, value in quantiles(lags).items():
        part = f"{key}={value:.1f} ms"
        if reference:
            ref = reference[key]
            part += f" (ref {ref:.1f}, x{value / ref:.0f})" if ref > 0 else f" (ref {ref:.1f})"
        parts.append(part)
    return f"{name}: n={len(lags)} " + " ".join(parts)


def created_lags(store: Store, after: float) -> list[float]:
    rows = store.query("SELECT scheduled_at, created_at FROM executions WHERE scheduled_at IS NOT NULL")
    lags = []
    for row in rows:
        scheduled = datetime.fromisoformat(row["scheduled_at"]).timestamp()
        if scheduled > after:
            lags.append(datetime.fromisoformat(row["created_at"]).timestamp() - scheduled)
    return sorted(lags)


def run(every_second: int, seconds: float, folder: Path, reference: dict[str, float], history: int = 0) -> None:
    store = Store(folder / f"bench-{every_second}.db")
    started = time.perf_counter()
    populate(store, every_second, history)
    print(f"\n== {TOTAL} Schedule triggers, {every_second} every second, {history} ended runs each, {seconds:.0f} s ==")
    print(f"populate: {time.perf_counter() - started:.2f} s")
    probe = LagProbe(store)
    scheduler = Scheduler(store, on_fire=probe)
    started = time.perf_counter()
    scheduler.start()
    print(f"start (recovery + {len(scheduler.job_ids)} timer jobs): {time.perf_counter() - started:.2f} s")
    probe.recording = True
    recording_from = time.time()
    time.sleep(seconds)
    scheduler.shutdown()
    written = store.query_one("SELECT count(*) AS n FROM executions WHERE state != 'SUCCESS'")
    print(f"executions written: {written['n'] if written else 0} (expected about {int(every_second * seconds)})")
    lags, slowest = measure_lags(store, probe, recording_from)
    print(figures("fire lag (row committed - scheduled)", lags, reference))
    print(f"slowest seconds (after start() returned: worst lag ms): {slowest}")
    print(figures("created_at - scheduled", created_lags(store, recording_from), reference))
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
    parser.add_argument("--history", type=int, default=0, help="ended runs per trigger before the start")
    args = parser.parse_args()
    print("== reference: bare time.sleep loop ==")
    reference_lags = sleep_loop_lags(min(args.seconds, 10.0))
    print(figures("sleep-loop lag", reference_lags))
    with tempfile.TemporaryDirectory() as folder:
        for count in args.every_second:
            run(count, args.seconds, Path(folder), quantiles(reference_lags), args.history)


if __name__ == "__main__":
    main()
