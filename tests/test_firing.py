"""Fire decisions as tables of explicit datetimes (no clock, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gitsync.schedule import firing

PARIS = ZoneInfo("Europe/Paris")


def at(hour: int, minute: int = 0, second: int = 0, day: int = 1, tz: Any = UTC) -> datetime:
    return datetime(2024, 1, day, hour, minute, second, tzinfo=tz)


def spec(cron: str = "0 * * * *", *, seconds: bool = False, tz: str | None = None, **extra: Any) -> firing.ScheduleSpec:
    row_keys = {k: extra.pop(k) for k in ("disabled", "paused", "flow_disabled") if k in extra}
    return firing.schedule_spec({"uid": "ns.f/t", "cron": cron, "with_seconds": seconds, "timezone": tz,
                                 "spec": extra, **row_keys})  # fmt: skip


OUTAGE = [
    # id, spec, anchor, now, recovering, due, skipped, late, next
    pytest.param(spec(), at(9), at(12, 0, 30), True, [at(10), at(11), at(12)], [], [], at(13), id="ALL-3h-outage"),
    pytest.param(
        spec(recoverMissedSchedules="LAST"),
        at(9),
        at(12, 0, 30),
        True,
        [at(12)],
        [at(10), at(11)],
        [],
        at(13),
        id="LAST-3h-outage",
    ),
    pytest.param(
        spec(recoverMissedSchedules="NONE"),
        at(9),
        at(12, 0, 30),
        True,
        [],
        [at(10), at(11), at(12)],
        [],
        at(13),
        id="NONE-3h-outage",
    ),
    pytest.param(
        spec(recoverMissedSchedules="NONE"),
        at(9),
        at(12, 0, 0) + timedelta(milliseconds=40),
        True,
        [at(12)],
        [at(10), at(11)],
        [],
        at(13),
        id="NONE-fires-what-is-due-now",
    ),
    pytest.param(
        spec(lateMaximumDelay="PT1H"),
        at(9),
        at(12, 0, 30),
        True,
        [at(12)],
        [],
        [at(10), at(11)],
        at(13),
        id="ALL-lateMaximumDelay-skips",
    ),
    pytest.param(
        spec(recoverMissedSchedules="LAST", lateMaximumDelay="PT10S"),
        at(9),
        at(12, 0, 30),
        True,
        [],
        [at(10), at(11)],
        [at(12)],
        at(13),
        id="LAST-too-late",
    ),
    pytest.param(
        spec(recoverMissedSchedules="NONE"),
        at(9),
        at(12, 0, 30),
        False,
        [at(10), at(11), at(12)],
        [],
        [],
        at(13),
        id="running-mode-catches-up-a-stall",
    ),
    pytest.param(spec(), at(12), at(12, 30), False, [], [], [], at(13), id="nothing-due"),
    pytest.param(spec(), at(12, 0, 0), at(12, 0, 0), False, [], [], [], at(13), id="already-fired-time-not-again"),
    pytest.param(spec(), at(11, 59, 0), at(12, 0, 0), False, [at(12)], [], [], at(13), id="exactly-on-time"),
    pytest.param(
        spec("*/1 * * * * *", seconds=True),
        at(12, 0, 0),
        at(12, 0, 1) + timedelta(milliseconds=3),
        False,
        [at(12, 0, 1)],
        [],
        [],
        at(12, 0, 2),
        id="every-second",
    ),
]


@pytest.mark.parametrize(("schedule", "anchor", "now", "recovering", "due", "skipped", "late", "following"), OUTAGE)
def test_decide(
    schedule: firing.ScheduleSpec,
    anchor: datetime,
    now: datetime,
    recovering: bool,
    due: list[datetime],
    skipped: list[datetime],
    late: list[datetime],
    following: datetime,
) -> None:
    decision = firing.decide(schedule, anchor, now, recovering=recovering)
    assert list(decision.due) == due
    assert list(decision.skipped) == skipped
    assert list(decision.late) == late
    assert decision.next_fire == following
    assert decision.anchor == max([anchor, *due, *skipped, *late])


def test_new_trigger_does_not_backfill_before_registration() -> None:
    registered = firing.anchor_of({"registered_at": "2024-01-01T11:30:00.000+00:00", "last_scheduled_at": None})
    decision = firing.decide(spec(), registered, at(11, 45), recovering=True)
    assert decision.due == () and decision.skipped == ()
    assert decision.next_fire == at(12)


def test_changed_cron_keeps_bookkeeping() -> None:
    """Hourly fired 10:00; changed to every 15 minutes at 10:20: 10:15 fires once, 10:00 never again."""
    anchor = at(10)
    first = firing.decide(spec("*/15 * * * *"), anchor, at(10, 20), recovering=True)
    assert first.due == (at(10, 15),) and first.next_fire == at(10, 30)
    again = firing.decide(spec("*/15 * * * *"), first.anchor, at(10, 20), recovering=True)
    assert again.due == ()
    daily = firing.decide(spec("0 2 * * *"), anchor, at(10, 20), recovering=True)
    assert daily.due == () and daily.next_fire == at(2, day=2)


@pytest.mark.parametrize("flag", ["disabled", "paused", "flow_disabled"])
def test_inactive_never_fires_and_skips_its_times(flag: str) -> None:
    decision = firing.decide(spec(**{flag: True}), at(9), at(12, 0, 30))
    assert decision.due == () and decision.next_fire is None
    assert decision.anchor == at(12)  # reactivating does not backfill the paused period


def test_bounded_catch_up_continues_at_next_decision() -> None:
    every_second = spec("*/1 * * * * *", seconds=True)
    first = firing.decide(every_second, at(9), at(12))
    assert len(first.due) == firing.MAX_MISSED and first.note
    assert first.due[0] == at(9, 0, 1) and first.next_fire == first.due[-1] + timedelta(seconds=1)
    second = firing.decide(every_second, first.anchor, at(12))
    assert second.due[0] == first.due[-1] + timedelta(seconds=1)


def test_dst_day_paris() -> None:
    """Spring forward 2024-03-31: 02:30 does not exist and fires at 03:30 (runner.cron); autumn 02:30 fires once."""
    daily = spec("30 2 * * *", tz="Europe/Paris")
    anchor = datetime(2024, 3, 30, 2, 30, tzinfo=PARIS)
    decision = firing.decide(daily, anchor, datetime(2024, 3, 31, 12, tzinfo=PARIS))
    assert decision.due == (datetime(2024, 3, 31, 3, 30, tzinfo=PARIS),)
    assert decision.next_fire == datetime(2024, 4, 1, 2, 30, tzinfo=PARIS)
    autumn = firing.decide(daily, datetime(2024, 10, 26, 2, 30, tzinfo=PARIS), datetime(2024, 10, 27, 12, tzinfo=PARIS))
    assert len(autumn.due) == 1 and autumn.due[0].utcoffset() == timedelta(hours=2)


def test_default_timezone_is_utc_and_bad_cron_never_fires() -> None:
    assert spec().zone == ZoneInfo("UTC")
    broken = spec("61 * * * *")
    decision = firing.decide(broken, at(9), at(12))
    assert (
        broken.cron is None
        and decision.due == ()
        and decision.next_fire is None
        and "cannot fire" in str(decision.note)
    )


def test_trigger_vars_in_trigger_timezone() -> None:
    daily = spec("0 8 * * *", tz="Europe/Paris")
    scheduled = datetime(2024, 1, 2, 8, tzinfo=PARIS)
    assert firing.trigger_vars(daily, scheduled) == {
        "date": "2024-01-02T08:00:00+01:00",
        "next": "2024-01-03T08:00:00+01:00",
        "previous": "2024-01-01T08:00:00+01:00",
    }


@pytest.mark.parametrize(
    ("cron", "seconds", "moment", "expected"),
    [
        ("0 * * * *", False, at(12, 0, 0), at(12)),
        ("0 * * * *", False, at(11, 59, 59), at(11)),
        ("*/1 * * * * *", True, at(12, 0, 0) + timedelta(milliseconds=500), at(12)),
        ("0 0 29 2 *", False, at(0), datetime(2020, 2, 29, tzinfo=UTC)),
    ],
)
def test_last_fire_at_or_before(cron: str, seconds: bool, moment: datetime, expected: datetime) -> None:
    schedule = spec(cron, seconds=seconds)
    assert schedule.cron is not None
    assert firing.last_fire_at_or_before(schedule.cron, moment, UTC) == expected
