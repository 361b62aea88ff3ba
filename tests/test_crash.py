"""Crash test: the daemon (a real subprocess) is killed with SIGKILL at random moments, and its SQLite file must hold
either the old commit or the new one (never a mix), with fires recorded exactly once and none lost after restart.

(a) while it applies a commit changing half the flows of a repository (small repositories for most trials, a few
    of 2,000 flows with 1,000 changed); the kill delay is uniform between 0 and the time a ref move takes to be
    applied (calibrated once per repository, without a kill);
(b) while every-second Schedule triggers (`*/1 * * * * *`, withSeconds, recoverMissedSchedules ALL) fire; the
    timer writes each second's fires ahead (AHEAD rows) and releases them at the second, so kills land between the
    two as well as inside either (the tally says how many left AHEAD rows behind).

Trials are chained: the restart after a kill is also the check that the daemon recovers (it must apply the new
commit, and recover the fires missed while it was down) and the start of the next trial. The randomness is seeded;
the seed is printed (`pytest -s`) and named in every failure. Set GITSYNC_CRASH_SEED to replay a run.
bench/bench_crash.py runs the same trials many more times.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from daemon_harness import Daemon, query_db, start_daemon
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

FOLDER = "flows"
AUTHOR = b"Crash <crash@example.com>"
TICK_CRON = "*/1 * * * * *"


# -- repositories -------------------------------------------------------------------------------------------------


def bench_flow(n: int, changed: bool = False) -> str:
    """A generated flow (bench/flowgen's shape); `changed` edits its tasks and, when it has one, its trigger."""
    kind = n % 3
    ns, flow_id = f"crash.team{n % 20}", f"flow_{n:05d}"
    message = f"changed {n}" if changed else f"hello {n}"
    text = f"id: {flow_id}\nnamespace: {ns}\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n"
    text += f'    message: "{message}"\n'
    if kind == 1:
        hour = 3 if changed else 2
        text += "triggers:\n  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n"
        text += f'    cron: "{n % 60} {hour} * * *"\n'
    if kind == 2:
        text += '  - id: value\n    type: io.kestra.plugin.core.debug.Return\n    format: "{{ flow.id }}"\n'
    return text


def tick_flow(n: int) -> str:
    return f"""\
id: tick_{n}
namespace: crash.tick
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: tick
triggers:
  - id: every_second
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "{TICK_CRON}"
    withSeconds: true
    recoverMissedSchedules: ALL
"""


def write_tree(repo: Repo, files: dict[str, bytes]) -> bytes:
    """Nested trees for {path: content}; the root tree id."""
    children: dict[str, dict[str, bytes]] = {}
    tree = Tree()
    for path, content in files.items():
        head, _, rest = path.partition("/")
        if rest:
            children.setdefault(head, {})[rest] = content
        else:
            blob = Blob.from_string(content)
            repo.object_store.add_object(blob)
            tree.add(head.encode(), 0o100644, blob.id)
    for name, sub in children.items():
        tree.add(name.encode(), 0o040000, write_tree(repo, sub))
    repo.object_store.add_object(tree)
    return tree.id


def make_commit(repo: Repo, tree: bytes, parent: bytes | None, message: str) -> bytes:
    """A commit object (the branch ref is not moved)."""
    commit = Commit()
    commit.tree = tree
    commit.parents = [parent] if parent else []
    commit.author = commit.committer = AUTHOR
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = message.encode()
    repo.object_store.add_object(commit)
    return commit.id


@dataclass(frozen=True)
class Desired:
    """What a commit defines, read back from its git tree: {(uid, blob)} and {(trigger uid, cron)}."""

    flows: frozenset[tuple[str, str]]
    triggers: frozenset[tuple[str, str | None]]


def desired_state(repo: Repo, commit: bytes, folder: str = FOLDER) -> Desired:
    """Parse every flow file of the commit's tree under `folder` (independently of gitsync's loader)."""
    tree = repo.object_store[repo.object_store[commit].tree]
    _, folder_tree = tree.lookup_path(repo.object_store.__getitem__, folder.encode())
    flows, triggers = set(), set()
    for entry in repo.object_store.iter_tree_contents(folder_tree):
        if not entry.path.endswith((b".yaml", b".yml")):
            continue
        data = yaml.load(repo.object_store[entry.sha].data, Loader=yaml.CSafeLoader)
        uid = f"{data['namespace']}.{data['id']}"
        flows.add((uid, entry.sha.decode()))
        for trigger in data.get("triggers") or []:
            triggers.add((f"{uid}/{trigger['id']}", trigger.get("cron")))
    return Desired(frozenset(flows), frozenset(triggers))


class FlowRepo:
    """A local repository (dulwich, non-bare) that alternates between two trees: `changed` of `count` flows differ.

    `ticks` extra flows hold every-second triggers and never change.
    """

    def __init__(self, path: Path, count: int, changed: int, ticks: int = 0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.repo = Repo.init(str(path), mkdir=True)
        self.repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
        base = {f"{FOLDER}/team{n % 20}/flow_{n:05d}.yaml": bench_flow(n).encode() for n in range(count)}
        base |= {f"{FOLDER}/tick/tick_{n}.yaml": tick_flow(n).encode() for n in range(ticks)}
        other = dict(base)
        for n in range(0, count, max(1, count // max(1, changed)))[:changed]:
            other[f"{FOLDER}/team{n % 20}/flow_{n:05d}.yaml"] = bench_flow(n, changed=True).encode()
        self.trees = (write_tree(self.repo, base), write_tree(self.repo, other))
        self.head = make_commit(self.repo, self.trees[0], None, "initial")
        self.repo.refs[b"refs/heads/main"] = self.head
        self._desired: dict[bytes, Desired] = {}
        self._turn = 1

    def next_commit(self) -> bytes:
        """A new commit on the head with the other tree (not yet on the branch)."""
        commit = make_commit(self.repo, self.trees[self._turn], self.head, f"switch to tree {self._turn}")
        self._turn ^= 1
        return commit

    def move_branch(self, commit: bytes) -> None:
        self.repo.refs[b"refs/heads/main"] = commit
        self.head = commit

    def desired(self, commit: bytes) -> Desired:
        tree = self.repo.object_store[commit].tree
        if tree not in self._desired:
            self._desired[tree] = desired_state(self.repo, commit)
        return self._desired[tree]

    def source(self) -> dict[str, Any]:
        return {
            "name": "main",
            "repo": str(self.path),
            "branch": "main",
            "path": FOLDER,
            "poll": "1h",
            # a status block (its token variable unset, so nothing is posted) makes the sync queue its statuses
            "status": {"provider": "github", "repository": "acme/flows", "token_env": "GITSYNC_CRASH_NO_TOKEN"},
        }


# -- checks on the SQLite file ------------------------------------------------------------------------------------


def applied_commit(db: Path) -> str | None:
    rows = query_db(db, "SELECT applied_commit FROM sources WHERE name = 'main'")
    return rows[0]["applied_commit"] if rows else None


def applied_state(db: Path) -> Desired:
    flows = query_db(db, "SELECT uid, blob FROM flows WHERE source = 'main'")
    triggers = query_db(db, "SELECT uid, cron FROM triggers")
    return Desired(frozenset((r["uid"], r["blob"]) for r in flows), frozenset((r["uid"], r["cron"]) for r in triggers))


def check_whole_commit(db: Path, flow_repo: FlowRepo, old: bytes, new: bytes) -> str:
    """The applied state is exactly `old`'s or exactly `new`'s, and everything written with it agrees; returns
    "old" or "new" (raises AssertionError naming the difference otherwise)."""
    have = applied_state(db)
    commit = applied_commit(db)
    outcome = None
    for name, candidate in (("old", old), ("new", new)):
        if have == flow_repo.desired(candidate):
            outcome = name
            assert commit == candidate.decode(), f"flows are the {name} commit's but applied_commit is {commit}"
    if outcome is None:
        old_flows, new_flows = flow_repo.desired(old).flows, flow_repo.desired(new).flows
        raise AssertionError(
            f"applied state is a mix: {len(have.flows & old_flows - new_flows)} flows of the old commit, "
            f"{len(have.flows & new_flows - old_flows)} of the new, {len(have.flows - old_flows - new_flows)} of "
            f"neither; applied_commit {commit}"
        )
    check_revisions(db)
    success = query_db(
        db, "SELECT count(*) AS n FROM outbox WHERE commit_sha = ? AND state = 'success'", (new.decode(),)
    )[0]["n"]
    assert success == (1 if outcome == "new" else 0), "the success status is written with the apply, and only then"
    return outcome


def check_revisions(db: Path) -> None:
    """Every active flow's revision is its latest revision row, with the same blob."""
    bad = query_db(
        db,
        """SELECT f.uid FROM flows f LEFT JOIN revisions r ON r.uid = f.uid AND r.revision = f.revision
           WHERE r.uid IS NULL OR r.blob != f.blob OR r.deleted = 1
              OR f.revision != (SELECT max(revision) FROM revisions WHERE uid = f.uid)""",
    )
    assert bad == [], f"flows whose revision row disagrees: {bad[:5]}"


def check_fires(db: Path, *, contiguous: bool, stopped: bool = False) -> int:
    """No (trigger, second) fired twice, bookkeeping agrees with the executions (fires written ahead, AHEAD rows,
    are no fires: each is after its trigger's last decided time, and its trigger's bookkeeping is advanced for it
    with what puts it back); with `contiguous`, no second is missing between a trigger's first and last fire
    (recoverMissedSchedules ALL); `stopped` (a clean stop): no AHEAD row is left. Returns the number of fires."""
    duplicates = query_db(
        db,
        """SELECT trigger_uid, scheduled_at, count(*) AS n FROM executions WHERE trigger_uid IS NOT NULL
           GROUP BY trigger_uid, scheduled_at HAVING count(*) > 1""",
    )
    assert duplicates == [], f"fired twice: {duplicates[:5]}"
    decided_ahead = query_db(
        db,
        """SELECT e.trigger_uid, e.scheduled_at, t.ahead_last AS decided, t.ahead_at, t.last_scheduled_at
           FROM executions e JOIN triggers t ON t.uid = e.trigger_uid
           WHERE e.state = 'AHEAD' AND (e.scheduled_at <= coalesce(t.ahead_last, '')
                 OR t.ahead_at IS NOT e.scheduled_at OR t.last_scheduled_at IS NOT e.scheduled_at)""",
    )
    assert decided_ahead == [], (
        f"written ahead at a time already decided, or without its bookkeeping: {decided_ahead[:5]}"
    )
    if stopped:
        left = query_db(db, "SELECT trigger_uid, scheduled_at FROM executions WHERE state = 'AHEAD'")
        assert left == [], f"fires written ahead left after a clean stop: {left[:5]}"
    rows = query_db(  # the time last decided: before the advance written with a fire still AHEAD
        db,
        """SELECT t.uid, max(e.scheduled_at) AS last_fire,
                  CASE WHEN EXISTS (SELECT 1 FROM executions a WHERE a.trigger_uid = t.uid
                                    AND a.scheduled_at = t.ahead_at AND a.state = 'AHEAD')
                       THEN t.ahead_last ELSE t.last_scheduled_at END AS last_scheduled_at
           FROM triggers t JOIN executions e ON e.trigger_uid = t.uid AND e.state != 'AHEAD'
           WHERE t.with_seconds = 1 GROUP BY t.uid""",
    )
    for row in rows:
        assert row["last_scheduled_at"] == row["last_fire"], f"bookkeeping of {row['uid']} disagrees: {row}"
    if contiguous:
        for row in rows:
            missing = missing_seconds(db, row["uid"])
            assert missing == [], f"{row['uid']}: {len(missing)} second(s) never fired, first {missing[:3]}"
    return int(query_db(db, "SELECT count(*) AS n FROM executions WHERE state != 'AHEAD'")[0]["n"])


def missing_seconds(db: Path, trigger: str) -> list[str]:
    rows = query_db(
        db,
        "SELECT scheduled_at FROM executions WHERE trigger_uid = ? AND state != 'AHEAD' ORDER BY scheduled_at",
        (trigger,),
    )
    times = [datetime.fromisoformat(r["scheduled_at"]) for r in rows]
    have, missing = set(times), []
    moment = times[0] if times else None
    while moment is not None and moment < times[-1]:
        moment += timedelta(seconds=1)
        if moment not in have:
            missing.append(moment.isoformat())
    return missing


# -- trials -------------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Outcomes of the kills: which state each left."""

    seed: int
    counts: dict[str, int] = field(default_factory=dict)
    trials: int = 0

    def add(self, outcome: str) -> None:
        self.trials += 1
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def __str__(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        return f"{self.trials} trials (seed {self.seed}): {parts}"


def seed_from_env() -> int:
    value = os.environ.get("GITSYNC_CRASH_SEED")
    return int(value) if value else random.SystemRandom().randrange(2**32)


def wait_applied(daemon: Daemon, commit: bytes, timeout: float = 120.0) -> None:
    daemon.wait_for(lambda: applied_commit(daemon.db) == commit.decode(), f"commit {commit[:12]!r}", timeout)


def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


class SyncCrashRun:
    """The chain of sync trials on one repository: the daemon is always running between trials."""

    def __init__(self, directory: Path, flow_repo: FlowRepo, rng: random.Random, tally: Tally) -> None:
        self.directory = directory
        self.flow_repo = flow_repo
        self.rng = rng
        self.tally = tally
        self.daemon = self._start()
        wait_applied(self.daemon, flow_repo.head, timeout=300)
        self.window = self.calibrate()

    def _start(self) -> Daemon:
        return start_daemon(self.directory, [self.flow_repo.source()], log_level="WARNING")

    def calibrate(self) -> float:
        """Seconds from a ref move to its commit being applied (one run without a kill)."""
        commit = self.flow_repo.next_commit()
        started = time.monotonic()
        self.flow_repo.move_branch(commit)
        wait_applied(self.daemon, commit, timeout=300)
        return time.monotonic() - started

    def trial(self) -> str:
        old = self.flow_repo.head
        new = self.flow_repo.next_commit()
        # half the kills anywhere in the window, half near its end (where the fetch is done and the apply runs)
        spread = (0.0, 1.2) if self.rng.random() < 0.5 else (0.7, 1.05)
        delay = self.window * self.rng.uniform(*spread)
        started = time.monotonic()
        self.flow_repo.move_branch(new)
        sleep_until(started + delay)
        self.daemon.kill()
        context = f"seed {self.tally.seed}, trial {self.tally.trials}, kill after {delay:.3f}s"
        try:
            outcome = check_whole_commit(self.daemon.db, self.flow_repo, old, new)
        except AssertionError as exc:
            raise AssertionError(f"{context}: {exc}\n{self.daemon.log_tail()}") from exc
        if outcome == "old":
            outcome = "old, fetched" if self._cached_head() == new.decode() else "old, not fetched"
        self.tally.add(outcome)
        self.daemon = self._start()  # recovery: the restart applies the new commit
        wait_applied(self.daemon, new)
        assert check_whole_commit(self.daemon.db, self.flow_repo, old, new) == "new", context
        return outcome

    def _cached_head(self) -> str | None:
        ref = self.daemon.data_dir / "repos" / "main.git" / "refs" / "heads" / "main"
        return ref.read_text().strip() if ref.is_file() else None

    def finish(self, contiguous: bool = True) -> None:
        if self.daemon.alive():
            assert self.daemon.stop() == 0
        check_fires(self.daemon.db, contiguous=contiguous, stopped=True)


class TickCrashRun:
    """The chain of schedule trials: every-second triggers fire; the daemon is killed after a random run time."""

    def __init__(self, directory: Path, flow_repo: FlowRepo, rng: random.Random, tally: Tally) -> None:
        self.directory = directory
        self.flow_repo = flow_repo
        self.rng = rng
        self.tally = tally
        self.ticks = {uid for uid, cron in flow_repo.desired(flow_repo.head).triggers if cron == TICK_CRON}
        self.daemon = start_daemon(directory, [flow_repo.source()], log_level="WARNING")
        wait_applied(self.daemon, flow_repo.head)
        self.daemon.wait_for(lambda: self._fired() >= len(self.ticks), "the first fires")

    def _fired(self) -> int:
        return int(query_db(self.daemon.db, "SELECT count(*) AS n FROM executions WHERE state != 'AHEAD'")[0]["n"])

    def trial(self, longest: float = 2.5) -> None:
        delay = self.rng.uniform(0, longest)
        time.sleep(delay)
        self.daemon.kill()
        context = f"seed {self.tally.seed}, trial {self.tally.trials}, killed after {delay:.3f}s"
        try:
            check_fires(self.daemon.db, contiguous=True)
        except AssertionError as exc:
            raise AssertionError(f"{context}: {exc}\n{self.daemon.log_tail()}") from exc
        killed_at = datetime.now().astimezone()
        ahead = query_db(self.daemon.db, "SELECT count(*) AS n FROM executions WHERE state = 'AHEAD'")[0]["n"]
        self.tally.add("killed while firing, fires written ahead" if ahead else "killed while firing")
        self.daemon = start_daemon(self.directory, [self.flow_repo.source()], log_level="WARNING")
        self.daemon.wait_for(lambda: self._recovered(killed_at), "the seconds missed while down to be recovered")

    def _recovered(self, after: datetime) -> bool:
        """Every tick trigger has fired a second later than `after` (so the outage is behind its last fire)."""
        rows = query_db(
            self.daemon.db,
            "SELECT trigger_uid, max(scheduled_at) AS last FROM executions WHERE state != 'AHEAD' GROUP BY trigger_uid",
        )
        last = {r["trigger_uid"]: datetime.fromisoformat(r["last"]) for r in rows}
        return all(uid in last and last[uid] > after for uid in self.ticks)

    def finish(self) -> int:
        if self.daemon.alive():
            assert self.daemon.stop() == 0
        return check_fires(self.daemon.db, contiguous=True, stopped=True)


def run_sync_trials(directory: Path, count: int, changed: int, trials: int, rng: random.Random, tally: Tally) -> float:
    """`trials` kills while applying commits that change `changed` of `count` flows; returns the kill window."""
    flow_repo = FlowRepo(directory / "repo", count, changed, ticks=2)
    run = SyncCrashRun(directory / "daemon", flow_repo, rng, tally)
    for _ in range(trials):
        run.trial()
    run.finish()
    return run.window


def run_tick_trials(directory: Path, triggers: int, trials: int, rng: random.Random, tally: Tally) -> int:
    flow_repo = FlowRepo(directory / "repo", 0, 0, ticks=triggers)
    run = TickCrashRun(directory / "daemon", flow_repo, rng, tally)
    for _ in range(trials):
        run.trial()
    return run.finish()


def report(label: str, tally: Tally, extra: str = "") -> None:
    print(f"\n{label}: {tally}{extra}")


def seeded() -> tuple[random.Random, int]:
    seed = seed_from_env()
    print(f"\ncrash test seed: {seed} (GITSYNC_CRASH_SEED={seed} replays it)")
    return random.Random(seed), seed


# -- the tests ----------------------------------------------------------------------------------------------------


def test_kill_while_applying_small_commits(tmp_path: Path) -> None:
    rng, seed = seeded()
    tally = Tally(seed)
    window = run_sync_trials(tmp_path, count=200, changed=100, trials=24, rng=rng, tally=tally)
    report("kills while applying 100 of 200 flows", tally, f", window {window:.3f}s")
    assert tally.trials == 24


def test_kill_while_applying_a_large_commit(tmp_path: Path) -> None:
    rng, seed = seeded()
    tally = Tally(seed)
    window = run_sync_trials(tmp_path, count=2000, changed=1000, trials=6, rng=rng, tally=tally)
    report("kills while applying 1,000 of 2,000 flows", tally, f", window {window:.3f}s")
    assert tally.trials == 6


def test_kill_while_every_second_triggers_fire(tmp_path: Path) -> None:
    rng, seed = seeded()
    tally = Tally(seed)
    fires = run_tick_trials(tmp_path, triggers=5, trials=22, rng=rng, tally=tally)
    report("kills while 5 every-second triggers fire", tally, f", {fires} fires, none twice, no second missing")
    assert tally.trials == 22


def test_a_ref_lock_left_by_a_kill_does_not_block_later_fetches(tmp_path: Path) -> None:
    """A SIGKILL while the fetch moves the cache's branch ref leaves `refs/heads/main.lock` behind (found by the
    random trials); the next start must still fetch and apply."""
    flow_repo = FlowRepo(tmp_path / "repo", 20, 10)
    daemon = start_daemon(tmp_path / "daemon", [flow_repo.source()], log_level="WARNING")
    wait_applied(daemon, flow_repo.head)
    daemon.kill()
    new = flow_repo.next_commit()
    lock = daemon.data_dir / "repos" / "main.git" / "refs" / "heads" / "main.lock"
    lock.write_text(new.decode() + "\n")  # what dulwich had written when the kill came, before its rename
    pack_lock = daemon.data_dir / "repos" / "main.git" / "objects" / "pack" / f"pack-{'0' * 40}.idx.lock"
    pack_lock.write_bytes(b"")  # a kill while dulwich wrote a pack index (found by bench/bench_crash.py)
    flow_repo.move_branch(new)
    daemon = start_daemon(tmp_path / "daemon", [flow_repo.source()], log_level="WARNING")
    try:
        wait_applied(daemon, new)
        assert applied_state(daemon.db) == flow_repo.desired(new)
        check_revisions(daemon.db)
        assert not lock.exists() and not pack_lock.exists()
    finally:
        daemon.stop()
