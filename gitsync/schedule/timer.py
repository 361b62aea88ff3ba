"""The timer: an adapter over APScheduler 3's BackgroundScheduler with the in-memory job store.

SQLite is the only truth; the jobs are a cache derived from the `triggers` table, rebuilt at start-up and made
equal to it by `reconcile()` after every sync apply.

One job per *timer group*: the Schedule triggers sharing (cron, withSeconds, timezone) share their fire times,
so one APScheduler job (id `cron:<tz>:<s|m>:<cron>`) fires them all and its callback records all their fires in
ONE transaction (`fires.fire_due`). Measured (bench/bench_triggers.py): APScheduler itself needs about
10 µs per due job, so 10,000 per-trigger jobs due in the same second cost ~105 ms before any row is written,
and one transaction per fire costs more than a group commit. Decisions are made from the store in the callback
(not from APScheduler's run time), so a late or coalesced wakeup loses nothing and a repeat writes nothing.

Settings that matter: `coalesce=True` (one callback catches up from the store however late the timer is),
`max_instances=1` (two batches of one group never race), `misfire_grace_time=None` (a late timer still runs:
lateness is decided per trigger by lateMaximumDelay), a small thread pool (batches of different groups may
overlap; the store's lock serialises their transactions). Flow and Webhook triggers get no job: they fire from
events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from gitsync.schedule.conditions import ScheduleConditions
from gitsync.state import fires
from gitsync.state.database import Store, dumps
from runner.cron import Cron, CronError, parse_cron, parse_timezone

log = logging.getLogger("gitsync.schedule")

Group = tuple[str, bool, str]  # (cron, with_seconds, timezone)


class CronTimer(BaseTrigger):
    """An APScheduler trigger whose fire times are runner.cron's, so the timer and the plan agree exactly."""

    def __init__(self, cron: Cron, zone: tzinfo) -> None:
        self.cron = cron
        self.zone = zone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        return self.cron.next_fire(previous_fire_time or now, self.zone)

    def __str__(self) -> str:
        return f"cron[{self.cron.expression!r}, {self.zone}]"


class Scheduler:
    """Fires Schedule triggers into execution rows. `on_fire(execution_id)` is called after each fire."""

    def __init__(
        self,
        store: Store,
        on_fire: Callable[[str], None] | None = None,
        *,
        default_timezone: str = "UTC",
        threads: int = 4,
        conditions: ScheduleConditions | None = None,
    ) -> None:
        self.store = store
        self.on_fire = on_fire
        self.conditions = conditions
        """Judges the fires of triggers with `conditions` / `when` (without it they are not judged)."""
        self.default_timezone = default_timezone
        self._lock = threading.Lock()
        self._known: dict[str, str] = {}  # uid -> fingerprint of what its schedule depends on
        self._groups: set[Group] = set()
        self._scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(threads)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )

    def start(self) -> None:
        """Recover fires missed while stopped (per recoverMissedSchedules), then start the timers."""
        self._scheduler.start()
        self.reconcile()

    def shutdown(self, wait: bool = True) -> None:
        self._scheduler.shutdown(wait=wait)

    @property
    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self._scheduler.get_jobs())

    def reconcile(self) -> None:
        """Make the jobs equal the store's Schedule triggers; added or changed triggers recover missed fires.

        A retired trigger cannot fire after its apply committed whatever the jobs hold (each fire re-reads the
        trigger in its transaction); its group's job goes away here when no trigger is left in it.
        """
        with self._lock:
            rows = fires.schedule_triggers(self.store, self.default_timezone)
            wanted = {row["uid"]: _fingerprint(row) for row in rows}
            changed = [uid for uid, print_ in wanted.items() if self._known.get(uid) != print_]
            if changed:
                tz = self.default_timezone
                due = fires.fire_due(
                    self.store, _now(), uids=changed, recovering=True, default_timezone=tz, judge=self.conditions
                )
                self._fire(due)
            self._set_groups({group for row in rows if (group := self._group(row)) is not None})
            self._known = wanted

    def _set_groups(self, groups: set[Group]) -> None:
        for group in self._groups - groups:
            self._scheduler.remove_job(_job_id(group))
        for group in groups - self._groups:
            timer = _timer(group)
            if timer is not None:
                self._scheduler.add_job(self._fire_group, timer, args=(group,), id=_job_id(group), name=str(timer))
        self._groups = groups

    def _group(self, row: dict[str, Any]) -> Group | None:
        if not row["cron"]:
            return None
        return (row["cron"], bool(row["with_seconds"]), row["timezone"] or self.default_timezone)

    def _fire_group(self, group: Group) -> None:
        try:
            tz = self.default_timezone
            self._fire(fires.fire_due(self.store, _now(), group=group, default_timezone=tz, judge=self.conditions))
        except Exception:  # a failed batch is retried by the next timer wakeup (nothing was written)
            log.exception("firing triggers of %s failed", _job_id(group))

    def _fire(self, ids: Iterable[str]) -> None:
        if self.on_fire is None:
            return
        for execution_id in ids:
            try:
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


def _timer(group: Group) -> CronTimer | None:
    cron, with_seconds, zone = group
    try:
        return CronTimer(parse_cron(cron, with_seconds), parse_timezone(zone))
    except (CronError, ValueError) as exc:
        log.warning("no timer for cron %r in %s: %s", cron, zone, exc)
        return None
