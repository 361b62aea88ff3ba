"""Cron expressions as Kestra's Schedule trigger reads them: parsed strictly, with fire times computed
here in wall-clock time of the trigger's timezone (DST-correct).

Kestra uses Unix cron: day-of-week 0-7 with 0 and 7 both Sunday, and when both day-of-month and
day-of-week are restricted a day matches if either does. A wall time that a DST change skips fires
at the same instant shifted forward (02:30 on a spring-forward night fires at 03:30); a wall time that
a DST change repeats fires once, at its first occurrence.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.errors import GitSyncError

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_RANGES = {
    "second": (0, 59, None),
    "minute": (0, 59, None),
    "hour": (0, 23, None),
    "day-of-month": (1, 31, None),
    "month": (1, 12, MONTHS),
    "day-of-week": (0, 7, DAYS),
}
_SEARCH_DAYS = 366 * 8 + 2  # a leap day can be 8 years away (2096 -> 2104)


class CronError(GitSyncError, ValueError):
    """The expression does not parse; the message names the field and why."""


@dataclass(frozen=True)
class Cron:
    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int] | None  # None: any day of month
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 0 = Sunday; None: any day of week

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        weekday = (day.weekday() + 1) % 7
        if self.days is None and self.weekdays is None:
            return True
        if self.days is None:
            return weekday in self.weekdays  # type: ignore[operator]
        if self.weekdays is None:
            return day.day in self.days
        return day.day in self.days or weekday in self.weekdays

    def _first_time_at_or_after(self, start: time) -> time | None:
        h = bisect_left(self.hours, start.hour)
        while h < len(self.hours):
            hour = self.hours[h]
            min_minute = start.minute if hour == start.hour else 0
            m = bisect_left(self.minutes, min_minute)
            while m < len(self.minutes):
                minute = self.minutes[m]
                min_second = start.second if (hour, minute) == (start.hour, start.minute) else 0
                s = bisect_left(self.seconds, min_second)
                if s < len(self.seconds):
                    return time(hour, minute, self.seconds[s])
                m += 1
            h += 1
        return None

    def next_fire(self, after: datetime, timezone: tzinfo) -> datetime | None:
        """The first fire time strictly after `after` (an aware datetime), in `timezone`."""
        wall = after.astimezone(timezone).replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
        for _ in range(_SEARCH_DAYS):
            if self.matches_day(wall.date()):
                at = self._first_time_at_or_after(wall.time())
                if at is not None:
                    candidate = datetime.combine(wall.date(), at)
                    fire = candidate.replace(tzinfo=timezone, fold=0).astimezone(UTC).astimezone(timezone)
                    if fire > after:
                        return fire
                    wall = candidate + timedelta(seconds=1)  # a repeated hour: keep searching
                    continue
            wall = datetime.combine(wall.date() + timedelta(days=1), time())
        return None

    def next_fires(self, after: datetime, count: int, timezone: tzinfo) -> list[datetime]:
        out: list[datetime] = []
        while len(out) < count:
            fire = self.next_fire(after, timezone)
            if fire is None:
                break
            out.append(fire)
            after = fire
        return out


def parse_cron(expression: str, with_seconds: bool = False) -> Cron:
    text = " ".join(str(expression).split())
    text = NICKNAMES.get(text.lower(), text)
    parts = text.split(" ") if text else []
    names = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"]
    if not with_seconds:
        names = names[1:]
    if len(parts) != len(names):
        hint = " (6 fields need withSeconds: true)" if len(parts) == 6 and not with_seconds else ""
        raise CronError(f"cron {expression!r} has {len(parts)} fields, expected {len(names)}{hint}")
    values = {name: _expand(expression, name, part) for name, part in zip(names, parts, strict=True)}
    weekdays = values["day-of-week"]
    return Cron(
        expression=text,
        seconds=tuple(sorted(_every(values, "second", range(60)) if with_seconds else {0})),
        minutes=tuple(sorted(values["minute"] or range(60))),
        hours=tuple(sorted(values["hour"] or range(24))),
        days=frozenset(values["day-of-month"]) if values["day-of-month"] is not None else None,
        months=frozenset(values["month"] or range(1, 13)),
        weekdays=frozenset(0 if d == 7 else d for d in weekdays) if weekdays is not None else None,
    )


def _every(values: dict[str, set[int] | None], name: str, default: range) -> set[int] | range:
    """A field's values; `*` (None) means every value of the range."""
    found = values.get(name)
    return default if found is None else found


def _expand(expression: str, name: str, part: str) -> set[int] | None:
    """The values a field allows, or None for every value; raise CronError naming what is wrong."""
    low, high, labels = _RANGES[name]
    if part == "*" or (part == "?" and name in ("day-of-month", "day-of-week")):
        return None
    values: set[int] = set()
    for item in part.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"cron {expression!r}: {name} step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, (6 if name == "day-of-week" else high)
        else:
            first, dash, last = base.partition("-")
            start = _value(expression, name, first, low, high, labels)
            end = _value(expression, name, last, low, high, labels) if dash else (high if step_text else start)
            if end < start:
                raise CronError(f"cron {expression!r}: {name} range {base!r} runs backwards")
        values.update(range(start, end + 1, step))
    return values


def _value(expression: str, name: str, text: str, low: int, high: int, labels: list[str] | None) -> int:
    if labels and text.lower() in labels:
        return labels.index(text.lower()) + (1 if labels is MONTHS else 0)
    if not text.isdigit():
        raise CronError(f"cron {expression!r}: {name} value {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"cron {expression!r}: {name} value {value} is out of range {low}-{high}")
    return value


def parse_timezone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (use an IANA name such as Europe/Paris or UTC)") from None
