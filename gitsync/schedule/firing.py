"""Fire decisions of Schedule triggers: pure (no I/O, no clock): every function takes `now`.

A trigger's bookkeeping is its *anchor*: the latest scheduled time already decided (fired or skipped), or the
time it was registered when it never fired. The times still to decide are the cron's fire times in
(anchor, now]. A changed cron keeps the anchor, so the next fire is computed from it with the new cron: no
time is fired twice and none is lost.

Two modes:

* recovering (at start-up, and when a trigger is added or changed): the pending times were missed while
  nothing could fire them, and `recoverMissedSchedules` decides (ALL: every one, oldest first; LAST: the latest;
  NONE: none of them, only a time that is due right now);
* running (a timer fired): every pending time fires, oldest first, even when the timer ran a little late.

In both, a time older than `lateMaximumDelay` is skipped, and at most MAX_MISSED times fire per decision (the
anchor then stops at the last one fired, so the rest follow at the next decision: bounded work, nothing lost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from runner.cron import Cron, CronError, parse_cron, parse_timezone
from runner.durations import parse_duration

SCHEDULE_TYPE = "io.kestra.plugin.core.trigger.Schedule"
"""The canonical type name of Schedule triggers: the only one stored in `triggers.type` (the sync stores the
registry's canonical name; migration 5 rewrote older rows), so no alias list is needed anywhere."""
MAX_MISSED = 1000  # fires per decision; the rest follow at the next one
MAX_LISTED = 100  # skipped times listed in a decision (for logs); more are only noted
ON_TIME = timedelta(seconds=1)  # NONE still fires a time this close to now: it is due, not missed
_WINDOWS = tuple(timedelta(seconds=s) for s in (2, 120, 7200, 2 * 86400, 62 * 86400, 2 * 366 * 86400, 9 * 366 * 86400))
TICK = timedelta(microseconds=1)
_TICK = TICK


class Recover(StrEnum):
    ALL = "ALL"
    LAST = "LAST"
    NONE = "NONE"


@dataclass(frozen=True)
class ScheduleSpec:
    """What the decisions need of a trigger row; `cron` is None when it can never fire (see `note`)."""

    cron: Cron | None
    zone: tzinfo
    recover: Recover = Recover.ALL
    late_maximum_delay: timedelta | None = None
    active: bool = True
    note: str | None = None


@dataclass(frozen=True)
class Decision:
    due: tuple[datetime, ...]  # to fire now, oldest first
    late: tuple[datetime, ...]  # skipped: older than lateMaximumDelay (at most MAX_LISTED listed)
    skipped: tuple[datetime, ...]  # skipped: missed, and the policy (LAST, NONE) drops them (at most MAX_LISTED)
    anchor: datetime  # the new bookkeeping: the latest time decided (or the old anchor)
    next_fire: datetime | None  # the next time to decide; None: never (inactive, or the cron never fires)
    note: str | None = None


def is_schedule(canonical_type: str) -> bool:
    """Whether a trigger of this canonical type name is fired by the scheduler (the one place that decides)."""
    return canonical_type == SCHEDULE_TYPE


def schedule_spec(row: Mapping[str, Any], default_timezone: str = "UTC") -> ScheduleSpec:
    """Read a `triggers` row (joined with its flow's `disabled` as `flow_disabled` when known)."""
    spec = row.get("spec") or {}
    active = not (row.get("disabled") or row.get("paused") or row.get("flow_disabled"))
    recover = str(spec.get("recoverMissedSchedules") or "ALL").upper()
    try:
        zone = parse_timezone(row.get("timezone") or default_timezone)
        cron = parse_cron(row["cron"], bool(row.get("with_seconds")))
        late = spec.get("lateMaximumDelay")
        return ScheduleSpec(
            cron=cron,
            zone=zone,
            recover=Recover(recover) if recover in Recover.__members__ else Recover.ALL,
            late_maximum_delay=parse_duration(late) if isinstance(late, str) else None,
            active=active,
        )
    except (CronError, ValueError, TypeError, KeyError) as exc:
        return ScheduleSpec(cron=None, zone=UTC, active=active, note=f"trigger {row.get('uid')!r} cannot fire: {exc}")


def anchor_of(row: Mapping[str, Any]) -> datetime:
    """The last scheduled time decided, or the registration time: a new trigger never fires before it."""
    return parse_time(row.get("last_scheduled_at") or row["registered_at"])


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def decide(spec: ScheduleSpec, anchor: datetime, now: datetime, *, recovering: bool = False) -> Decision:
    """Which times in (anchor, now] fire now, which are skipped, and the next time to decide."""
    cron = spec.cron
    if cron is None:
        return Decision((), (), (), anchor, None, spec.note)
    latest = last_fire_at_or_before(cron, now, spec.zone)
    if latest is None or latest <= anchor:
        return Decision((), (), (), anchor, cron.next_fire(max(anchor, now), spec.zone) if spec.active else None)
    if not spec.active:
        return Decision((), (), _listed(cron, anchor, latest, spec.zone), latest, None, "paused or disabled")
    if recovering and spec.recover is not Recover.ALL:
        return _keep_latest(spec, cron, anchor, latest, now)
    return _fire_all(spec, cron, anchor, latest, now)


def _fire_all(spec: ScheduleSpec, cron: Cron, anchor: datetime, latest: datetime, now: datetime) -> Decision:
    start = anchor
    late: tuple[datetime, ...] = ()
    if spec.late_maximum_delay is not None and now - spec.late_maximum_delay > anchor:
        start = now - spec.late_maximum_delay - _TICK  # times before the cutoff are late: don't walk them all
        late = _listed(cron, anchor, min(start, latest), spec.zone)
    due = tuple(t for t in cron.next_fires(start, MAX_MISSED, spec.zone) if t <= latest)
    if not due:
        return Decision((), late, (), latest, cron.next_fire(latest, spec.zone))
    more = due[-1] < latest
    note = f"{MAX_MISSED} missed fires now; the rest follow at the next decision" if more else None
    return Decision(due, late, (), due[-1], cron.next_fire(due[-1], spec.zone), note)


def _keep_latest(spec: ScheduleSpec, cron: Cron, anchor: datetime, latest: datetime, now: datetime) -> Decision:
    """LAST fires the latest missed time; NONE fires only a time due right now."""
    wanted = spec.recover is Recover.LAST or now - latest <= ON_TIME
    is_late = spec.late_maximum_delay is not None and now - latest > spec.late_maximum_delay
    before = _listed(cron, anchor, latest - _TICK, spec.zone)
    if not wanted:
        before = (*before, latest)
    due = (latest,) if wanted and not is_late else ()
    late = (latest,) if wanted and is_late else ()
    return Decision(due, late, before, latest, cron.next_fire(latest, spec.zone))


def _listed(cron: Cron, after: datetime, until: datetime, zone: tzinfo) -> tuple[datetime, ...]:
    """The fire times in (after, until], at most MAX_LISTED of them (for logs and tests)."""
    return tuple(t for t in cron.next_fires(after, MAX_LISTED, zone) if t <= until)


def last_fire_at_or_before(cron: Cron, at: datetime, zone: tzinfo) -> datetime | None:
    """The latest fire time <= `at`: search forward from ever wider windows before it (cron has no reverse)."""
    for window in _WINDOWS:
        fire = cron.next_fire(at - window, zone)
        if fire is None or fire > at:
            continue
        for _ in range(100_000):
            following = cron.next_fire(fire, zone)
            if following is None or following > at:
                return fire
            fire = following
        return fire
    return None


def trigger_vars(spec: ScheduleSpec, scheduled: datetime) -> dict[str, str | None]:
    """Kestra's `trigger.date`, `trigger.next`, `trigger.previous`, in the trigger's timezone."""
    if spec.cron is None:
        return {"date": scheduled.isoformat(), "next": None, "previous": None}
    following = spec.cron.next_fire(scheduled, spec.zone)
    previous = last_fire_at_or_before(spec.cron, scheduled - _TICK, spec.zone)
    return {
        "date": scheduled.astimezone(spec.zone).isoformat(),
        "next": following.isoformat() if following else None,
        "previous": previous.isoformat() if previous else None,
    }
