"""The timer: one thread that wakes once per fire time of the Schedule triggers and fires every trigger due then in
ONE transaction, their rows written ahead of the time.

SQLite is the only truth; the timer's groups are derived from the `triggers` table, rebuilt at start-up and made
equal to it by `reconcile()` after every sync apply. A *timer group* is the Schedule triggers sharing (cron,
withSeconds, timezone): they share their fire times, and one decision serves them all.

For each fire time T (the earliest next fire time over the groups):

1. at T - LEAD (or as soon as the time before T is released), `fires.prepare_fires` writes the coming fires of
   the groups due at T as AHEAD rows (nothing reads or runs them), PREPARE_CHUNK rows per transaction so other
   work gets the store in between;
2. at T, `fires.release_due`, one transaction: the AHEAD rows whose trigger is unchanged become CREATED (or QUEUED)
   with the release's time as `created_at`, their bookkeeping advances, and `fires.fire_due` decides whatever else
   of the groups due is due (triggers not written ahead, AHEAD rows refused, missed times);
3. the executions' ids go to `on_fire` on a thread of their own, so a slow `on_fire` (starting 10,000 runs) never
   delays the next fire time.

Measured (bench/bench_triggers.py, 10,000 every-second triggers, a busy 2-core machine): deciding and inserting
the 10,000 rows at T gave a fire lag of p50 610-710 ms, p99 1.6-1.7 s; releasing rows written ahead gives p50
90-120 ms, p99 180-230 ms. The release is one UPDATE of 10,000 rows (state, created_at, the overlap check), the
bookkeeping of 10,000 triggers and a commit: 60-100 ms of CPU, the floor of this design. Decisions are made
from the store (the bookkeeping), not from the timer, so a late wake-up loses nothing and a repeat writes nothing.
A crash leaves at most AHEAD rows, which decide nothing: `start()` deletes them, then recovers missed fires
(recoverMissedSchedules).
Flow and Webhook triggers have no timer: they fire from events.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from gitsync.errors import StateError
from gitsync.schedule.conditions import ScheduleConditions
from gitsync.state import fires
from gitsync.state.database import Store, dumps
from gitsync.state.fires import Group
from runner.cron import Cron, CronError, parse_cron, parse_timezone

log = logging.getLogger("gitsync.schedule")

LEAD = timedelta(seconds=2)
"""How long before a fire time its fires are written ahead, at most: every-second triggers are written right
after the release of the second before (the timer handles one time after the other)."""
_LONGEST_WAIT = 60.0  # seconds: a wait is cut so a moved wall clock is noticed


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
        self._lock = threading.Lock()  # guards _groups (the timer thread reads it)
        self._known: dict[str, str] = {}  # uid -> fingerprint of what its schedule depends on
        self._groups: dict[Group, tuple[Cron, tzinfo]] = {}
        self._wake = threading.Event()  # the groups changed, or stopping: compute the next time again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fired: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None

    def start(self) -> None:
        """Delete the fires a stopped process wrote ahead, recover fires missed while stopped (per
        recoverMissedSchedules), then start the timer."""
        self._stop.clear()
        if self.on_fire is not None:
            self._dispatcher = threading.Thread(target=self._dispatch_loop, name="scheduler-fires", daemon=True)
            self._dispatcher.start()
        fires.discard_ahead(self.store)
        decided = self.reconcile()
        self._thread = threading.Thread(target=self._run, args=(decided,), name="scheduler", daemon=True)
        self._thread.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop the timer; the fires it wrote ahead are deleted (the next start decides their times)."""
        self._stop.set()
        self._wake.set()
        if wait and self._thread is not None:
            self._thread.join()
        try:
            fires.discard_ahead(self.store)
        except StateError as exc:  # the next start deletes them before it decides anything
            log.warning("the fires written ahead stay in the state file until the next start: %s", exc)
        if self._dispatcher is not None:
            self._fired.put(None)
            if wait:
                self._dispatcher.join()
            self._dispatcher = None

    @property
    def job_ids(self) -> list[str]:
        """The timer groups, one id each (`cron:<tz>:<s|m>:<cron>`)."""
        with self._lock:
            return sorted(_job_id(group) for group in self._groups)

    def reconcile(self) -> datetime:
        """Make the timer's groups equal the store's Schedule triggers; added or changed triggers recover missed
        fires (their fires written ahead are deleted first). The moment up to which those were decided.

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
                fires.discard_ahead(self.store, gone)
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
        self._wake.set()
        return now

    def _group(self, row: dict[str, Any]) -> Group | None:
        if not row["cron"]:
            return None
        return (row["cron"], bool(row["with_seconds"]), row["timezone"] or self.default_timezone)

    # -- the timer thread ---------------------------------------------------------------------------------------

    def _run(self, decided: datetime) -> None:
        """Times up to `decided` are decided; each turn handles the next fire time after it."""
        while not self._stop.is_set():
            self._wake.clear()
            at, due = self._next_time(decided)
            if at is None:
                self._wake.wait()
                continue
            if self._wait_until(at - LEAD, self._wake):
                continue  # the groups changed (or stopping): the next time may be another
            prepared = self._prepare(at, due) if _now() < at else None
            if self._wait_until(at, self._stop):
                break
            now = _now()
            self._dispatch(self._release(prepared, self._due_groups(decided, now)))
            decided = now

    def _next_time(self, after: datetime) -> tuple[datetime | None, list[Group]]:
        """The earliest fire time after `after` over the groups, and the groups that fire then."""
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
        return earliest, due

    def _due_groups(self, after: datetime, now: datetime) -> list[Group]:
        """The groups with a fire time in (after, now]."""
        with self._lock:
            return [g for g, (cron, zone) in self._groups.items() if (t := cron.next_fire(after, zone)) and t <= now]

    def _wait_until(self, moment: datetime, event: threading.Event) -> bool:
        """Sleep until `moment` (wall clock); True when `event` was set first."""
        while True:
            delay = (moment - _now()).total_seconds()
            if delay <= 0:
                return False
            if event.wait(min(delay, _LONGEST_WAIT)):
                return True

    def _prepare(self, at: datetime, groups: list[Group]) -> fires.Prepared | None:
        try:
            tz = self.default_timezone
            return fires.prepare_fires(self.store, at, groups, default_timezone=tz, judge=self.conditions)
        except Exception:  # the release decides those fires without them
            log.exception("writing the fires at %s ahead failed", at.isoformat())
            return None

    def _release(self, prepared: fires.Prepared | None, groups: list[Group]) -> list[str]:
        tz = self.default_timezone
        try:
            return fires.release_due(self.store, prepared, groups, default_timezone=tz, judge=self.conditions)
        except Exception:  # nothing was written: each group alone, so one that fails does not hold the others
            log.exception("firing the triggers due failed; trying each timer group alone")
        written: list[str] = []
        for group in groups:
            try:
                written += fires.fire_due(self.store, _now(), group=group, default_timezone=tz, judge=self.conditions)
            except Exception:  # retried by the next fire time of the group (nothing was written)
                log.exception("firing triggers of %s failed", _job_id(group))
        return written

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
