"""A big state database for the UI and API figures (issue 13, point 3): 10,000 flows and 100,000 executions.

What it holds, and how each part is made:

1. **Flows, by the real sync.** A git repository (dulwich, as bench_sync's) of 10,000 generated flow files, each
   different: bench/flowgen.py's templates, and every tenth file one of this module's (`outcome_flow`), whose
   input `outcome` says how it ends (SUCCESS, WARNING, FAILED or KILLED), so that the executions can be in every
   state with task runs that match them. Plus `bench.big.foreach_1000`, a ForEach over 999 values (1,000 task
   runs in one execution). A second commit edits 200 of them (revision 2). Both commits are applied by
   `sync_source`, the apply path `gitsync sync` and the daemon take; the triggers of the Schedule flows come
   with them.
2. **A few hundred executions, run for real** through `RunManager` (the daemon's executions: the recorder writes
   their executions, task runs and logs): every outcome, as manual, API and webhook runs; and the one
   ForEach-1000 run.
3. **100,000 executions, by cloning rows the recorder wrote** (bench-only code, sqlite3 directly: running 100,000
   for real would take hours). Each clone copies a real execution of a flow of the same shape (same tasks, so its
   task runs and logs match the flow it is put on) onto another flow's current revision and commit, with a new
   id (sortable by its new creation time, as `new_execution_id` makes them), `created_at` spread evenly over
   the last 30 days (started and ended shifted with it, durations kept), its task runs and logs copied with the
   same shift, and a trigger kind drawn from manual, api, webhook, schedule (on the Schedule flows, with their
   trigger and the scheduled time) and flow. States come from the real runs cloned: mostly SUCCESS, some
   FAILED, WARNING and KILLED. Every clone has ended (none is left open for the daemon to recover).

The result is cached under the temp dir, keyed by a hash of this file, flowgen.py, gitgen.py and the state's
schema, so a second run is quick; the caller copies the database before a daemon opens it.

Run: .venv/bin/python bench/seed_big.py [--flows 10000] [--executions 100000] [--rebuild]   (prints where it is)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flowgen import flow_text
from gitgen import commit_files, flow_repo

HERE = Path(__file__).resolve().parent
SCHEMA = HERE.parent / "gitsync" / "state" / "schema.py"

DAYS = 30
OUTCOMES = ("SUCCESS", "WARNING", "FAILED", "KILLED")
OUTCOME_WEIGHTS = (55, 10, 30, 5)
"""How the executions of the outcome flows end (out of 100); the other flows' runs all succeed."""
KIND_WEIGHTS = {"manual": 15, "api": 25, "webhook": 10, "schedule": 45, "flow": 5}
"""Trigger kinds of the clones; `schedule` only on flows with a Schedule trigger (the others draw again)."""
FOREACH_VALUES = 999
"""The ForEach's values: its own task run and one per value make 1,000 task runs."""
BIG_FLOW = "bench.big.foreach_1000"
EDITED = 200
"""Flows the second commit changes (revision 2)."""


@dataclass
class Seeded:
    """Where a seeded state is, and the facts a benchmark needs about it."""

    root: str
    db: str
    data_dir: str
    repo: str
    flows: int
    executions: int
    task_runs: int
    logs: int
    big_execution: str
    """The execution with 1,000 task runs."""
    busy_namespace: str
    """A namespace with FAILED executions (for the filtered list)."""
    seconds: float
    """How long the seeding took."""

    @property
    def path(self) -> Path:
        return Path(self.root)


# -- the flows ----------------------------------------------------------------------------------------------------


def outcome_flow(n: int) -> str:
    """A flow whose input `outcome` says how its execution ends; different for each n."""
    return f"""\
id: flow_{n:05d}
namespace: bench.team{n % 20}
description: Generated flow number {n}, which ends as its input `outcome` says.
labels:
  team: ops
inputs:
  - id: outcome
    type: SELECT
    values: [SUCCESS, WARNING, FAILED, KILLED]
    defaults: SUCCESS
tasks:
  - id: start
    type: io.kestra.plugin.core.log.Log
    message: "flow {n} starts and will end {{{{ inputs.outcome }}}}"
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{{{ inputs.outcome == 'FAILED' }}}}"
    errorMessage: "flow {n} was asked to fail"
  - id: finish
    type: io.kestra.plugin.core.execution.Exit
    state: "{{{{ inputs.outcome }}}}"
errors:
  - id: alert
    type: io.kestra.plugin.core.log.Log
    level: ERROR
    message: "flow {n} failed: {{{{ errorLogs()[0].message ?? 'no error log' }}}}"
"""


def foreach_flow() -> str:
    values = ", ".join(str(v) for v in range(FOREACH_VALUES))
    return f"""\
id: foreach_1000
namespace: bench.big
description: A ForEach over {FOREACH_VALUES} values; its execution has 1,000 task runs.
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [{values}]
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "item {{{{ taskrun.value }}}}"
"""


def edited(text: bytes) -> bytes:
    """The flow with its description changed (or given one): a new revision."""
    if b"\ndescription: " in text:
        return text.replace(b"\ndescription: ", b"\ndescription: Edited in the second commit. ", 1)
    head, _, rest = text.partition(b"\n")
    namespace, _, rest = rest.partition(b"\n")
    return b"\n".join([head, namespace, b"description: Edited in the second commit.", rest])


def flow_file(n: int) -> str:
    return outcome_flow(n) if n % 10 == 9 else flow_text(n)


def shape(n: int) -> str:
    """Flows of one shape have the same tasks: an execution of one is cloned onto another."""
    return "outcome" if n % 10 == 9 else f"template{n % 3}"


def flow_uid(n: int) -> str:
    return f"bench.team{n % 20}.flow_{n:05d}"


# -- seeding ------------------------------------------------------------------------------------------------------


def cache_key() -> str:
    """A hash of the seeding code and of the schema it writes (a new migration seeds again)."""
    digest = hashlib.sha256()
    for path in (HERE / "seed_big.py", HERE / "flowgen.py", HERE / "gitgen.py", SCHEMA):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    return Path(os.environ.get("GITSYNC_BENCH_CACHE") or tempfile.gettempdir())


def seeded(flows: int = 10_000, executions: int = 100_000, real: int = 300, rebuild: bool = False) -> Seeded:
    """The seeded state for these sizes: from the cache when this code built it before, else built now."""
    root = cache_root() / f"gitsync-seed-big-{cache_key()}-{flows}-{executions}-{real}"
    meta = root / "seed.json"
    if meta.exists() and not rebuild:
        return Seeded(**json.loads(meta.read_text()))
    building = root.with_name(root.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    started = time.perf_counter()
    info = build(building, flows, executions, real)
    info.seconds = round(time.perf_counter() - started, 1)
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    info = Seeded(**{**asdict(info), "root": str(root), **_paths(root)})
    meta.write_text(json.dumps(asdict(info), indent=2))
    return info


def _paths(root: Path) -> dict[str, str]:
    return {"db": str(root / "state.db"), "data_dir": str(root / "data"), "repo": str(root / "repo")}


def build(root: Path, flows: int, executions: int, real: int) -> Seeded:
    from gitsync.compose import build_runs, load_registry
    from gitsync.config import SourceConfig, load_settings
    from gitsync.state.database import Store
    from gitsync.sync.apply import sync_source

    paths = _paths(root)
    registry = load_registry()
    store = Store(Path(paths["db"]))
    source = SourceConfig(name="bench", repo=paths["repo"], branch="main", path="flows")

    t0 = time.perf_counter()
    repo, files, head = flow_repo(Path(paths["repo"]), 0)
    files = {f"flows/team{n % 20}/flow_{n:05d}.yaml": flow_file(n).encode() for n in range(flows)}
    files["flows/big/foreach_1000.yaml"] = foreach_flow().encode()
    head = commit_files(repo, files, f"{flows} generated flows and a ForEach over {FOREACH_VALUES} values", head)
    result = sync_source(store, source, Path(paths["data_dir"]), registry)
    assert result.outcome == "applied", (result.outcome, result.summary, result.errors[:3])
    for n in range(0, flows, max(1, flows // EDITED)):
        path = f"flows/team{n % 20}/flow_{n:05d}.yaml"
        files[path] = edited(files[path])
    commit_files(repo, files, f"edit {EDITED} flows", head)
    result = sync_source(store, source, Path(paths["data_dir"]), registry)
    assert result.outcome == "applied", (result.outcome, result.summary, result.errors[:3])
    repo.close()
    print(f"  {flows:,} flows synced (two commits) in {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    settings = load_settings(None, {"db": paths["db"], "data_dir": paths["data_dir"]})
    runs = build_runs(store, settings, registry, status_sources=None)
    big = run_real(runs, flows, real)
    runs.shutdown()
    store.close()
    print(f"  {real} executions and the ForEach-1000 run for real in {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    counts = clone(Path(paths["db"]), flows, executions)
    print(f"  cloned to {counts['executions']:,} executions in {time.perf_counter() - t0:.1f} s", flush=True)
    return Seeded(
        root=str(root),
        **paths,
        flows=flows + 1,
        executions=counts["executions"],
        task_runs=counts["task_runs"],
        logs=counts["logs"],
        big_execution=big,
        busy_namespace="bench.team9",
        seconds=0.0,
    )


def run_real(runs: object, flows: int, real: int) -> str:
    """`real` executions through the RunManager, every shape, outcome and kind; then the ForEach-1000 one."""
    from gitsync.executions.manager import RunManager

    assert isinstance(runs, RunManager)
    kinds = ("manual", "api", "webhook")
    shapes: dict[str, list[int]] = {}
    for n in range(min(flows, 400)):
        shapes.setdefault(shape(n), []).append(n)
    done = 0
    for round_ in range(real):
        for name, numbers in shapes.items():
            if done == real:
                break
            n = numbers[round_ % len(numbers)]
            inputs = {"outcome": OUTCOMES[round_ % len(OUTCOMES)]} if name == "outcome" else {}
            kind = kinds[round_ % len(kinds)]
            trigger = {"body": {"n": n}, "headers": {}, "parameters": {}} if kind == "webhook" else None
            execution_id = runs.create(flow_uid(n), inputs, trigger=trigger, kind=kind)  # type: ignore[arg-type]
            runs.run(execution_id)
            done += 1
    big = runs.create(BIG_FLOW, {}, kind="manual")
    runs.run(big)
    return big


# -- cloning (bench-only; sqlite3 directly) -----------------------------------------------------------------------


def clone(db: Path, flows: int, total: int) -> dict[str, int]:
    """Clone the recorder's executions until `total` (see the module's docstring); returns the row counts."""
    rng = random.Random(13)
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        sources = _real_executions(conn)
        current = {r["uid"]: (r["revision"], r["commit_sha"]) for r in conn.execute("SELECT * FROM flows")}
        triggers = {r["flow_uid"]: r["uid"] for r in conn.execute("SELECT uid, flow_uid FROM triggers")}
        existing = conn.execute("SELECT count(*) FROM executions").fetchone()[0]
        count = total - existing
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(days=DAYS)
        step = timedelta(days=DAYS) / max(1, count)
        kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
        plan = []
        for i in range(count):
            n = rng.randrange(flows)
            uid = flow_uid(n)
            pool = sources[shape(n)]
            if shape(n) == "outcome":
                wanted = rng.choices(OUTCOMES, OUTCOME_WEIGHTS)[0]
                src = rng.choice(pool.get(wanted) or next(iter(pool.values())))
            else:
                src = rng.choice(pool["SUCCESS"])
            created = start + step * i + timedelta(milliseconds=rng.randrange(1000))
            kind = rng.choices(kinds, weights)[0]
            while kind == "schedule" and uid not in triggers:
                kind = rng.choices(kinds, weights)[0]
            revision, commit = current[uid]
            plan.append(
                (
                    _new_id(created, i, rng),
                    src["id"],
                    uid,
                    revision,
                    commit,
                    (created - _parse(src["created_at"])).total_seconds() / 86400,
                    kind,
                    triggers[uid] if kind == "schedule" else None,
                    _iso(created.replace(microsecond=0)) if kind == "schedule" else None,
                )
            )
        _insert(conn, plan)
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("executions", "task_runs", "logs")
        }
    finally:
        conn.close()
    return counts


def _real_executions(conn: sqlite3.Connection) -> dict[str, dict[str, list[sqlite3.Row]]]:
    """The recorder's executions by flow shape and state (the ForEach-1000 one is not cloned)."""
    out: dict[str, dict[str, list[sqlite3.Row]]] = {}
    for row in conn.execute("SELECT id, flow_uid, state, created_at FROM executions WHERE flow_uid != ?", (BIG_FLOW,)):
        n = int(row["flow_uid"].rsplit("_", 1)[1])
        out.setdefault(shape(n), {}).setdefault(row["state"], []).append(row)
    return out


def _insert(conn: sqlite3.Connection, plan: list[tuple[object, ...]]) -> None:
    shifted = "strftime('%Y-%m-%dT%H:%M:%f+00:00', julianday({col}) + p.shift)"
    renamed = "p.new_id || substr({col}, length(p.src_id) + 1)"  # a task run's id is `<execution id>-<n>`; NULL stays
    with conn:
        conn.execute(
            "CREATE TEMP TABLE plan (new_id TEXT PRIMARY KEY, src_id TEXT, flow_uid TEXT, revision INTEGER,"
            " commit_sha TEXT, shift REAL, kind TEXT, trigger_uid TEXT, scheduled_at TEXT)"
        )
        conn.executemany("INSERT INTO temp.plan VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", plan)
        columns = [r[1] for r in conn.execute("PRAGMA table_info(executions)")]
        replaced = {
            "id": "p.new_id",
            "flow_uid": "p.flow_uid",
            "revision": "p.revision",
            "commit_sha": "p.commit_sha",
            "trigger_kind": "p.kind",
            "trigger_uid": "p.trigger_uid",
            "scheduled_at": "p.scheduled_at",
            "owner": "NULL",
            "created_at": shifted.format(col="e.created_at"),
            "started_at": shifted.format(col="e.started_at"),
            "ended_at": shifted.format(col="e.ended_at"),
        }
        select = ", ".join(replaced.get(c, f"e.{c}") for c in columns)
        conn.execute(
            f"INSERT INTO executions ({', '.join(columns)}) SELECT {select}"
            " FROM temp.plan p JOIN executions e ON e.id = p.src_id"
        )
        columns = [r[1] for r in conn.execute("PRAGMA table_info(task_runs)")]
        replaced = {
            "id": renamed.format(col="t.id"),
            "execution_id": "p.new_id",
            "parent_id": renamed.format(col="t.parent_id"),
            "started_at": shifted.format(col="t.started_at"),
            "ended_at": shifted.format(col="t.ended_at"),
        }
        select = ", ".join(replaced.get(c, f"t.{c}") for c in columns)
        conn.execute(
            f"INSERT INTO task_runs ({', '.join(columns)}) SELECT {select}"
            " FROM temp.plan p JOIN task_runs t ON t.execution_id = p.src_id ORDER BY p.new_id, t.id"
        )
        conn.execute(
            "INSERT INTO logs (execution_id, task_run_id, at, level, message)"
            f" SELECT p.new_id, {renamed.format(col='l.task_run_id')}, {shifted.format(col='l.at')}, l.level, l.message"
            " FROM temp.plan p JOIN logs l ON l.execution_id = p.src_id ORDER BY p.new_id, l.id"
        )
        conn.execute("DROP TABLE temp.plan")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _new_id(created: datetime, i: int, rng: random.Random) -> str:
    millis = int(created.timestamp() * 1000)
    return f"{millis:012x}{i % 0x1000000:06x}{rng.getrandbits(40):010x}"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def main() -> None:
    parser = argparse.ArgumentParser(description="seed a big gitsync state (cached)")
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=300, help="executions run for real before cloning")
    parser.add_argument("--rebuild", action="store_true", help="build again even if cached")
    args = parser.parse_args()
    info = seeded(args.flows, args.executions, args.real, args.rebuild)
    print(json.dumps(asdict(info), indent=2))


if __name__ == "__main__":
    main()
