"""Cron as Kestra's Schedule reads it: strict parsing, Unix day-of-week, DST-correct fire times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.cron import CronError, parse_cron, parse_timezone

BERLIN = parse_timezone("Europe/Berlin")


def fires(expression: str, after: datetime, count: int = 3, tz: str = "UTC", seconds: bool = False) -> list[str]:
    cron = parse_cron(expression, with_seconds=seconds)
    return [f.isoformat() for f in cron.next_fires(after, count, parse_timezone(tz))]


@pytest.mark.parametrize(
    ("expression", "after", "tz", "expected"),
    [
        pytest.param(
            "0 9 * * 1-5",
            datetime(2026, 11, 27, 12, tzinfo=UTC),
            "UTC",
            ["2026-11-30T09:00:00+00:00", "2026-12-01T09:00:00+00:00", "2026-12-02T09:00:00+00:00"],
            id="weekdays-skip-the-weekend",
        ),
        pytest.param(
            "@daily",
            datetime(2026, 3, 28, tzinfo=UTC),
            "Europe/Berlin",
            ["2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00"],
            id="daily-across-spring-forward",
        ),
        pytest.param(
            "30 2 * * *",
            datetime(2026, 3, 28, 12, tzinfo=UTC),
            "Europe/Berlin",
            ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"],
            id="skipped-wall-time-fires-shifted",
        ),
        pytest.param(
            "30 2 * * *",
            datetime(2026, 10, 24, 12, tzinfo=UTC),
            "Europe/Berlin",
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00", "2026-10-27T02:30:00+01:00"],
            id="repeated-wall-time-fires-once",
        ),
        pytest.param(
            "0 0 13 * 5",
            datetime(2026, 11, 1, tzinfo=UTC),
            "UTC",
            ["2026-11-06T00:00:00+00:00", "2026-11-13T00:00:00+00:00", "2026-11-20T00:00:00+00:00"],
            id="day-of-month-or-day-of-week",
        ),
        pytest.param(
            "0 12 * * 0",
            datetime(2026, 11, 27, tzinfo=UTC),
            "UTC",
            ["2026-11-29T12:00:00+00:00", "2026-12-06T12:00:00+00:00", "2026-12-13T12:00:00+00:00"],
            id="zero-is-sunday",
        ),
        pytest.param(
            "0 12 * * 7",
            datetime(2026, 11, 27, tzinfo=UTC),
            "UTC",
            ["2026-11-29T12:00:00+00:00", "2026-12-06T12:00:00+00:00", "2026-12-13T12:00:00+00:00"],
            id="seven-is-sunday",
        ),
        pytest.param(
            "0 0 29 2 *",
            datetime(2026, 11, 27, tzinfo=UTC),
            "UTC",
            ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00", "2036-02-29T00:00:00+00:00"],
            id="leap-day",
        ),
        pytest.param(
            "15 10 * JAN,jul MON",
            datetime(2026, 11, 27, tzinfo=UTC),
            "America/New_York",
            ["2027-01-04T10:15:00-05:00", "2027-01-11T10:15:00-05:00", "2027-01-18T10:15:00-05:00"],
            id="names",
        ),
    ],
)
def test_next_fires(expression: str, after: datetime, tz: str, expected: list[str]) -> None:
    assert fires(expression, after, tz=tz) == expected


def test_with_seconds() -> None:
    after = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
    assert fires("*/20 * * * * *", after, seconds=True) == [
        "2026-11-27T10:00:20+00:00",
        "2026-11-27T10:00:40+00:00",
        "2026-11-27T10:01:00+00:00",
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param("0 24 * * *", "hour value 24 is out of range 0-23", id="hour"),
        pytest.param("60 * * * *", "minute value 60 is out of range 0-59", id="minute"),
        pytest.param("0 0 0 * *", "day-of-month value 0 is out of range 1-31", id="dom"),
        pytest.param("0 0 * 13 *", "month value 13 is out of range 1-12", id="month"),
        pytest.param("0 0 * * 8", "day-of-week value 8 is out of range 0-7", id="dow"),
        pytest.param("0 0 * *", "has 4 fields, expected 5", id="too-few"),
        pytest.param("0 0 * * * *", "has 6 fields, expected 5 (6 fields need withSeconds: true)", id="seconds"),
        pytest.param("*/0 * * * *", "minute step '0' must be a positive number", id="step"),
        pytest.param("0 10-2 * * *", "hour range '10-2' runs backwards", id="backwards"),
        pytest.param("0 noon * * *", "hour value 'noon' is not a number", id="word"),
        pytest.param("@fortnightly", "has 1 fields, expected 5", id="unknown-nickname"),
    ],
)
def test_bad_cron_says_which_field_and_why(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_cron(expression)


def test_unknown_timezone() -> None:
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        parse_timezone("Mars/Olympus")


def test_star_seconds_with_seconds_fires_every_second() -> None:
    after = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
    assert fires("* * * * * *", after, seconds=True) == [
        "2026-11-27T10:00:01+00:00", "2026-11-27T10:00:02+00:00", "2026-11-27T10:00:03+00:00",
    ]  # fmt: skip
