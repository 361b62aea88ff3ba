"""The timer: APScheduler 3 (a `BackgroundScheduler`, one worker thread) wakes once per fire time of the Schedule
triggers, and every trigger due then fires, their rows written ahead of the time and released at it.

SQLite is the only truth; the timer's groups are derived from the `triggers` table, rebuilt at start-up and made
equal to it by `reconcile()` after every sync apply. A *timer group* is the Schedule triggers sharing (cron,
withSeconds, timezone): they share their fire times, and one decision serves them all. Their times come from
`runner.cron`, the code the store decides with (APScheduler's own CronTrigger reads some crons otherwise: its
day-of-week 0 is Monday), so the timer and the decisions agree exactly.

APScheduler holds one job, the next *step*, a `DateTrigger` job that schedules the step after it when it has run.
For each fire time T (the earliest next fire time over the groups):

1. at T - LEAD (or as soon as the time before T is released), the step "prepare T": `ahead.prepare_fires`
   writes the coming fires of the groups due at T as AHEAD rows (nothing reads or runs them), each with its
   trigger's bookkeeping advanced (put back if the row is deleted unreleased), PREPARE_CHUNK rows per transaction
   so other work gets the store in between, and none after T (what it has not written by then, on a busy machine,
   the release writes): it schedules "release T" at T;
2. at T, the step "release T" (`ahead.release_due`): the AHEAD rows whose trigger is unchanged become CREATED
   (or QUEUED) with the release's time as `created_at` (no trigger row is written), in the chunks they were
   written in, one transaction each; then, in one more, `fires.fire_due` decides whatever else of the groups due
   by now is due (triggers not written ahead, AHEAD rows refused, missed times); it schedules "prepare" of the
   next time;
3. each transaction's executions go to `on_fire` as soon as it committed, on a thread of its own, so the first
   fires are seen while the next are released, and a slow `on_fire` (starting 10,000 runs) never delays a step.

`reconcile()` moves a pending "prepare" to the next time of the new groups; a pending "release" (at most LEAD
away) stays, and decides from the groups as they are at T. A step of an older schedule (a token says which)
does nothing. APScheduler's settings: one worker thread and `max_instances=1` (one step at a time),
`misfire_grace_time=None` (a late step still runs: the chain never breaks, and
lateness is decided per trigger from the store by lateMaximumDelay), `coalesce=True`. A step never waits more
than a minute (a wait is cut and the step scheduled again, so a moved wall clock is noticed), and a step woken
before its time is scheduled again for it.

Measured (bench/bench_triggers.py, 10,000 every-second triggers, 20 s, a 2-core machine shared with other work,
load 0.8-1.4): deciding and inserting the 10,000 rows at T gave a fire lag of p50 610-710 ms, p99 1.6-1.7 s;
releasing rows written ahead in one transaction that also wrote the 10,000 triggers' bookkeeping, p50 115-145 ms,
p99 350-420 ms (the first second after a start; 830-1,330 ms with 50 ended runs per trigger). Now: p50 25-29 ms,
p95 43-57 ms, p99 50-71 ms, the first second like the others. What went: the bookkeeping is written ahead with the
rows; the release's commit leaves the WAL checkpoint to the next write (it was a fifth of the release); the
overlap check's index names `ended_at`, not `state`, so the release (a change of state) no longer rewrites an
entry per fire (half of what was left); the release is in chunks, each handed to `on_fire` once committed. What
is left is one UPDATE per row (its state index entry, the overlap check, the row): about 25 ms for 10,000 plus a
millisecond per chunk.

Decisions are made from the store (the bookkeeping), not from the timer, so a late wake-up loses nothing and a
repeat writes nothing. A crash leaves at most AHEAD rows, which decided nothing: `start()` deletes them (putting
their triggers' bookkeeping back), then recovers missed fires (recoverMissedSchedules).
Flow and Webhook triggers have no timer: they fire from events.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from gitsync.errors import StateError
from gitsync.schedule.conditions import ScheduleConditions
from gitsync.state import ahead, fires
from gitsync.state.database import Store, dumps
from gitsync.state.fires import Group
from runner.cron import Cron, CronError, parse_cron, parse_timezone

log = logging.getLogger("gitsync.schedule")

LEAD = timedelta(seconds=2)
"""How long before a fire time its fires are written ahead, at most: every-second triggers are written right
after the release of the second before (the timer takes one step after the other)."""
_LONGEST_WAIT = timedelta(seconds=60)  # a step further away is scheduled again by then: a moved clock is noticed
_JOB = "timer"  # APScheduler's one job: the next step
_STEPS_AT_START = 4  # steps start() runs itself at most (a machine too slow to keep up still gets a timer)


@dataclass
class _Step:
    """One step of the timer: prepare (write ahead) or release the fires of time `at`."""

    release: bool
    at: datetime
    groups: list[Group] = field(default_factory=list)
    """The groups due at `at` when the step was planned (a release decides from the groups due when it runs)."""
    prepared: ahead.Prepared | None = None

    @property
    def when(self) -> datetime:
        return self.at if self.release else self.at - LEAD


class Scheduler:
    """Fires Schedule triggers into execution rows. `on_fire(execution_id)` is called after each fire (on the
    scheduler's own thread for it, in the order of the fires)."""

    def __init__(
        self,
        store: Store,
        on_fire: Callable[[str], None] | None = None,
        *,
        default_timezone: str = "UTC",
        conditions: ScheduleConditions | None = None,
    ) -> None:
        self.store = store
        self.on_fire = on_fire
        self.conditions = conditions
        """Judges the fires of triggers with `conditions` / `when` (without it they are not judged)."""
        self.default_timezone = default_timezone
        self._reconciling = threading.Lock()  # one reconcile at a time
        self._lock = threading.Lock()  # guards _groups (the steps read it)
        self._known: dict[str, str] = {}  # uid -> fingerprint of what its schedule depends on
        self._groups: dict[Group, tuple[Cron, tzinfo]] = {}
        self._steps = threading.Lock()  # guards what follows: which step is the live one
        self._timer: BackgroundScheduler | None = None
        self._decided: datetime | None = None  # times up to it are decided; None: not running, no step follows
        self._token = 0  # the live step's; a step with another does nothing
        self._pending: _Step | None = None  # the live step
        self._busy = False  # the live step is running
        self._fired: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None

    def start(self) -> None:
        """Delete the fires a stopped process wrote ahead, recover fires missed while stopped (per
        recoverMissedSchedules), then start the timer. The steps whose time has come by then (the fires of a time
        within LEAD written ahead, a time that passed meanwhile released) run here, so the first fire time after
        start() returns is written ahead like any later one."""
        if self.on_fire is not None:
            self._dispatcher = threading.Thread(target=self._dispatch_loop, name="scheduler-fires", daemon=True)
            self._dispatcher.start()
        ahead.discard_ahead(self.store)
        self._timer = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(1, pool_kwargs={"thread_name_prefix": "scheduler"})},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self._timer.start()
        decided = self.reconcile()
        step = self._next_prepare(decided)
        for _ in range(_STEPS_AT_START):
            if step is None or step.when > _now():
                break
            following, decided = self._attempt(step, decided)
            step = following or self._next_prepare(decided)
        with self._steps:
            self._decided = decided
            self._schedule(step)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the timer; the fires it wrote ahead are deleted (the next start decides their times)."""
        with self._steps:
            self._decided = None  # no step schedules another
            self._token += 1
            self._pending = None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.shutdown(wait=wait)  # waits for a running step
        try:
            ahead.discard_ahead(self.store)
        except StateError as exc:  # the next start deletes them before it decides anything
            log.warning("the fires written ahead stay in the state file until the next start: %s", exc)
        if self._dispatcher is not None:
            self._fired.put(None)
            if wait:
                self._dispatcher.join()
            self._dispatcher = None

    @property
    def job_ids(self) -> list[str]:
        """The timer groups, one id each (`cron:<tz>:<s|m>:<cron>`); APScheduler holds one job, their next step."""
        with self._lock:
            return sorted(_job_id(group) for group in self._groups)

    def reconcile(self) -> datetime:
        """Make the timer's groups equal the store's Schedule triggers; added or changed triggers recover missed
        fires (their fires written ahead are deleted first); a pending "prepare" moves to the new groups' next
        time. The moment up to which those were decided.

        A retired trigger cannot fire after its apply committed whatever the timer holds: the apply deleted its
        fires written ahead, and every fire re-reads the trigger in its transaction.
        """
        with self._reconciling:
            rows = fires.schedule_triggers(self.store, self.default_timezone)
            wanted = {row["uid"]: _fingerprint(row) for row in rows}
            changed = [uid for uid, print_ in wanted.items() if self._known.get(uid) != print_]
            gone = [uid for uid in self._known if uid not in wanted]
            now = _now()
            if gone:
                ahead.discard_ahead(self.store, gone)
            if changed:
                tz = self.default_timezone
                due = fires.fire_due(
                    self.store, now, uids=changed, recovering=True, default_timezone=tz, judge=self.conditions
                )
                self._dispatch(due)
            groups = {group for row in rows if (group := self._group(row)) is not None}
            timers = {group: timer for group in groups if (timer := _timer(group)) is not None}
            with self._lock:
                self._groups = timers
            self._known = wanted
        with self._steps:  # after the groups changed: a step running now plans its follower from the new ones
            pending = self._pending
            if self._decided is not None and not self._busy and not (pending and pending.release):
                self._schedule(self._next_prepare(self._decided))
        return now

    def _group(self, row: dict[str, Any]) -> Group | None:
        if not row["cron"]:
            return None
        return (row["cron"], bool(row["with_seconds"]), row["timezone"] or self.default_timezone)

    # -- the steps, on APScheduler's worker thread --------------------------------------------------------------

    def _schedule(self, step: _Step | None) -> None:
        """Make `step` the live step, run by APScheduler at its time (or within a minute). Holds `_steps`."""
        self._token += 1
        self._pending = step
        if self._timer is None:
            return
        if step is None:  # no group: the step planned before (if any) is removed; reconcile plans the next
            with contextlib.suppress(JobLookupError):
                self._timer.remove_job(_JOB)
            return
        run_at = min(step.when, _now() + _LONGEST_WAIT)
        self._timer.add_job(
            self._run_step, DateTrigger(run_at), args=(self._token, step), id=_JOB, replace_existing=True
        )

    def _run_step(self, token: int, step: _Step) -> None:
        with self._steps:
            if token != self._token or self._decided is None:
                return  # replaced by a reconcile, or stopping
            self._busy = True
            decided = self._decided
        following: _Step | None = None
        try:
            following, decided = self._attempt(step, decided)
        finally:
            with self._steps:
                self._busy = False
                if self._decided is not None:  # not stopping
                    self._decided = decided
                    self._schedule(following or self._next_prepare(decided))

    def _attempt(self, step: _Step, decided: datetime) -> tuple[_Step | None, datetime]:
        """`_take`, and when it fails, what follows it all the same."""
        try:
            return self._take(step, decided)
        except Exception:  # (the fires guard themselves) the chain goes on: a release, or the next time
            log.exception("the timer's step at %s failed", step.when.isoformat())
            return (None, _now()) if step.release else (_Step(True, step.at, step.groups), decided)

    def _take(self, step: _Step, decided: datetime) -> tuple[_Step | None, datetime]:
        """Run one step: the step that follows (None: the next "prepare", planned from the groups as they are
        then) and the moment up to which times are decided."""
        now = _now()
        if now < step.when:  # the wait was cut, or the wall clock moved back
            return step, decided
        if not step.release:
            return _Step(True, step.at, step.groups, self._prepare(step.at, step.groups)), decided
        self._release(step.prepared, self._due_groups(decided, now))
        return None, now

    def _next_prepare(self, after: datetime) -> _Step | None:
        """The step "prepare" of the earliest fire time after `after` over the groups (None: no group)."""
        earliest: datetime | None = None
        due: list[Group] = []
        with self._lock:
            for group, (cron, zone) in self._groups.items():
                moment = cron.next_fire(after, zone)
                if moment is None or (earliest is not None and moment > earliest):
                    continue
                if earliest is None or moment < earliest:
                    earliest, due = moment, []
                due.append(group)
        return _Step(False, earliest, due) if earliest is not None else None

    def _due_groups(self, after: datetime, now: datetime) -> list[Group]:
        """The groups with a fire time in (after, now]."""
        with self._lock:
            return [g for g, (cron, zone) in self._groups.items() if (t := cron.next_fire(after, zone)) and t <= now]

    def _prepare(self, at: datetime, groups: list[Group]) -> ahead.Prepared | None:
        try:
            tz = self.default_timezone
            return ahead.prepare_fires(
                self.store, at, groups, default_timezone=tz, judge=self.conditions, deadline=at
            )  # what is not written by `at` is written by the release
        except Exception:  # the release decides those fires without them
            log.exception("writing the fires at %s ahead failed", at.isoformat())
            return None

    def _release(self, prepared: ahead.Prepared | None, groups: list[Group]) -> None:
        """Fire what is due, each transaction's fires handed to `on_fire` as soon as it committed."""
        tz = self.default_timezone
        try:
            ahead.release_due(
                self.store, prepared, groups, default_timezone=tz, judge=self.conditions, on_fired=self._dispatch
            )
            return
        except Exception:  # what failed wrote nothing: each group alone, so one that fails does not hold the others
            log.exception("firing the triggers due failed; trying each timer group alone")
        for group in groups:
            try:
                self._dispatch(
                    fires.fire_due(self.store, _now(), group=group, default_timezone=tz, judge=self.conditions)
                )
            except Exception:  # retried by the next fire time of the group (nothing was written)
                log.exception("firing triggers of %s failed", _job_id(group))

    # -- on_fire, off the timer's thread ------------------------------------------------------------------------

    def _dispatch(self, ids: list[str]) -> None:
        if self.on_fire is not None and ids:
            self._fired.put(ids)

    def _dispatch_loop(self) -> None:
        while (ids := self._fired.get()) is not None:
            for execution_id in ids:
                try:
                    if self.on_fire is not None:
                        self.on_fire(execution_id)
                except Exception:  # a side channel never fails the fires
                    log.exception("on_fire(%s) failed", execution_id)


def _now() -> datetime:
    return datetime.now(UTC)


def _fingerprint(row: dict[str, Any]) -> str:
    keys = ("cron", "with_seconds", "timezone", "disabled", "paused", "flow_disabled")
    return dumps([row[key] for key in keys] + [row["spec"]])


def _job_id(group: Group) -> str:
    cron, with_seconds, zone = group
    return f"cron:{zone}:{'s' if with_seconds else 'm'}:{cron}"


def _timer(group: Group) -> tuple[Cron, tzinfo] | None:
    cron, with_seconds, zone = group
    try:
        return parse_cron(cron, with_seconds), parse_timezone(zone)
    except (CronError, ValueError) as exc:
        log.warning("no timer for cron %r in %s: %s", cron, zone, exc)
        return None
