"""Dates for expressions: Java DateTimeFormatter patterns, parsing of the values Kestra accepts, dateAdd.

A date value may be a datetime, a date, an ISO-8601 string (`2024-01-31`, `2024-01-31T10:00:00Z`, with or without
fraction and offset) or an epoch number (seconds; milliseconds when it is too large to be seconds). A value
without a time zone is read as UTC (Kestra's servers run in UTC).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.errors import ExpressionError

UTC = UTC

NAMED_FORMATS: dict[str, str] = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
    "iso_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_offset_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_zoned_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX'['VV']'",
    "iso_instant": "INSTANT",
    "iso_local_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS",
    "iso_date": "yyyy-MM-ddXXX",
    "iso_local_date": "yyyy-MM-dd",
    "iso_offset_date": "yyyy-MM-ddXXX",
    "iso_time": "HH:mm:ss.SSSSSSXXX",
    "iso_local_time": "HH:mm:ss.SSSSSS",
    "iso_offset_time": "HH:mm:ss.SSSSSSXXX",
    "iso_ordinal_date": "yyyy-DDDXXX",
    "iso_week_date": "YYYY-'W'ww-eXXX",
    "basic_iso_date": "yyyyMMddX",
    "rfc_1123_date_time": "EEE, d MMM yyyy HH:mm:ss 'GMT'",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "full": "EEEE, MMMM d, yyyy 'at' h:mm:ss a zzzz",
    "long": "MMMM d, yyyy 'at' h:mm:ss a z",
    "medium": "MMM d, yyyy, h:mm:ss a",
    "short": "M/d/yy, h:mm a",
}

UNITS: dict[str, str] = {
    "NANOS": "nanos",
    "MICROS": "micros",
    "MILLIS": "millis",
    "SECONDS": "seconds",
    "MINUTES": "minutes",
    "HOURS": "hours",
    "HALF_DAYS": "half_days",
    "DAYS": "days",
    "WEEKS": "weeks",
    "MONTHS": "months",
    "YEARS": "years",
    "DECADES": "decades",
    "CENTURIES": "centuries",
}

_PATTERN_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.DOTALL)


class DateError(ExpressionError):
    """A date could not be parsed or formatted."""


def zone(name: str | None) -> tzinfo | None:
    """The time zone named `name` (an IANA id, `UTC`, `Z` or an offset like `+02:00`), or None."""
    if not name:
        return None
    if name in ("Z", "UTC", "GMT"):
        return UTC
    match = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0)))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DateError(f"unknown time zone {name!r}") from exc


def to_datetime(value: Any, existing_format: str | None = None, default_zone: tzinfo | None = None) -> datetime:
    """`value` as a timezone-aware datetime; a value without a zone is read in `default_zone` (UTC when None), as
    Kestra reads a local date-time in the filter's `timeZone`."""
    local = default_zone or UTC
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=local)
    if isinstance(value, date):
        return datetime.combine(value, time(), local)
    if isinstance(value, bool):
        raise DateError(f"not a date: {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 100_000_000_000 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        parsed = parse_with_pattern(value, existing_format) if existing_format else parse_iso(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=local)
    raise DateError(f"not a date: {type(value).__name__}")


def parse_iso(text: str) -> datetime:
    """An ISO-8601 date or date-time (also an epoch number written as text); naive when it has no offset."""
    raw = text.strip()
    if re.fullmatch(r"-?\d{9,}(\.\d+)?", raw):
        return to_datetime(float(raw) if "." in raw else int(raw))
    candidate = raw.replace("z", "Z")
    if candidate.endswith("Z"):
        candidate = candidate[:-1] + "+00:00"
    candidate = re.sub(r"\[[^\]]+\]$", "", candidate)
    candidate = re.sub(r"(\.\d{6})\d+", r"\1", candidate)
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(candidate), time())
        except ValueError:
            raise DateError(f"not an ISO-8601 date: {text!r}") from None
    return parsed


_PARSE_PARTS = {
    "yyyy": r"(?P<year>\d{4})",
    "uuuu": r"(?P<year>\d{4})",
    "yy": r"(?P<year2>\d{2})",
    "MM": r"(?P<month>\d{2})",
    "M": r"(?P<month>\d{1,2})",
    "MMM": r"(?P<mon>[A-Za-z]{3})",
    "MMMM": r"(?P<monthname>[A-Za-z]+)",
    "dd": r"(?P<day>\d{2})",
    "d": r"(?P<day>\d{1,2})",
    "HH": r"(?P<hour>\d{2})",
    "H": r"(?P<hour>\d{1,2})",
    "mm": r"(?P<minute>\d{2})",
    "ss": r"(?P<second>\d{2})",
    "SSS": r"(?P<milli>\d{3})",
    "SSSSSS": r"(?P<micro>\d{6})",
    "XXX": r"(?P<offset>Z|[+-]\d{2}:\d{2})",
    "X": r"(?P<offset>Z|[+-]\d{2}(?:\d{2})?)",
    "Z": r"(?P<offset>[+-]\d{4})",
}


def parse_with_pattern(text: str, pattern: str) -> datetime:
    """Parse `text` with a (common subset of) Java pattern: y, M, d, H, m, s, S, X, Z and literals."""
    regex = []
    for token in _PATTERN_TOKEN.finditer(pattern):
        piece = token.group(0)
        if piece.startswith("'"):
            regex.append(re.escape(piece[1:-1].replace("''", "'") or "'"))
        elif piece in _PARSE_PARTS:
            regex.append(_PARSE_PARTS[piece])
        elif piece[0].isalpha():
            raise DateError(f"pattern letter {piece!r} is not supported for parsing")
        else:
            regex.append(re.escape(piece))
    match = re.fullmatch("".join(regex), text.strip())
    if not match:
        raise DateError(f"{text!r} does not match the format {pattern!r}")
    return _from_parts(match.groupdict())


def _from_parts(parts: dict[str, str | None]) -> datetime:
    year2 = parts.get("year2")
    year = int(parts.get("year") or 0) or (2000 + int(year2) if year2 else 1970)
    month = int(parts.get("month") or 0)
    if parts.get("mon") or parts.get("monthname"):
        name = (parts.get("mon") or parts.get("monthname") or "")[:3].lower()
        month = [m.lower() for m in calendar.month_abbr].index(name)
    micro = int(parts.get("micro") or 0) or int(parts.get("milli") or 0) * 1000
    offset = parts.get("offset")
    tz = zone(_normalize_offset(offset)) if offset else None
    return datetime(
        year,
        month or 1,
        int(parts.get("day") or 1),
        int(parts.get("hour") or 0),
        int(parts.get("minute") or 0),
        int(parts.get("second") or 0),
        micro,
        tzinfo=tz,
    )


def _normalize_offset(offset: str) -> str:
    if offset == "Z":
        return offset
    digits = offset[1:].replace(":", "")
    return f"{offset[0]}{digits[:2]}:{digits[2:4] or '00'}"


def format_date(value: Any, fmt: str | None = None, time_zone: str | None = None, existing: str | None = None) -> str:
    """Kestra's `date` filter: `value` formatted with a Java pattern or a predefined format name, in `time_zone`
    (UTC, the zone of Kestra's servers, when None): a date-time with another offset is converted to it, as Java's
    `DateTimeFormatter.withZone` does, and one without a zone is read in it."""
    tz = zone(time_zone) or UTC
    moment = to_datetime(value, existing, tz).astimezone(tz)
    pattern = NAMED_FORMATS.get((fmt or "iso").lower(), fmt or "")
    if pattern == "INSTANT":
        return iso_instant(moment)
    return format_pattern(moment, pattern)


def iso_instant(moment: datetime) -> str:
    """Java's Instant.toString(): UTC, `Z`, a fraction only when there is one, in groups of three digits."""
    utc = moment.astimezone(UTC)
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}{_java_fraction(utc.microsecond)}Z"


def java_local_time(moment: time) -> str:
    """Java's LocalTime.toString(): `HH:mm`, with `:ss` only when there are seconds or a fraction (groups of 3)."""
    text = f"{moment.hour:02d}:{moment.minute:02d}"
    if moment.second or moment.microsecond:
        text += f":{moment.second:02d}{_java_fraction(moment.microsecond)}"
    return text


def _java_fraction(microsecond: int) -> str:
    if not microsecond:
        return ""
    return f".{microsecond // 1000:03d}" if microsecond % 1000 == 0 else f".{microsecond:06d}"


def format_pattern(moment: datetime, pattern: str) -> str:
    """`moment` formatted with a java.time.format.DateTimeFormatter pattern."""
    out: list[str] = []
    for token in _PATTERN_TOKEN.finditer(pattern):
        piece = token.group(0)
        if piece.startswith("'"):
            out.append(piece[1:-1].replace("''", "'") if len(piece) > 2 else "'")
        elif piece in ("[", "]"):
            continue
        elif piece[0].isalpha():
            out.append(_field(moment, piece[0], len(piece)))
        else:
            out.append(piece)
    return "".join(out)


def _pad(number: int, width: int) -> str:
    return f"{number:0{width}d}" if number >= 0 else f"-{-number:0{width}d}"


def _text(full: str, count: int) -> str:
    if count == 4:
        return full
    if count == 5:
        return full[:1]
    return full[:3]


def _field(moment: datetime, letter: str, count: int) -> str:
    handler = _FIELDS.get(letter)
    if handler is None:
        return letter * count
    return handler(moment, count)


def _year(moment: datetime, count: int) -> str:
    return _pad(moment.year % 100, 2) if count == 2 else _pad(moment.year, count)


def _month(moment: datetime, count: int) -> str:
    if count >= 3:
        return _text(calendar.month_name[moment.month], count)
    return _pad(moment.month, count)


def _weekday(moment: datetime, count: int) -> str:
    return _text(calendar.day_name[moment.weekday()], max(count, 3) if count < 4 else count)


def _local_weekday(moment: datetime, count: int) -> str:
    if count <= 2:
        return _pad(moment.isoweekday() % 7 + 1, count)
    return _weekday(moment, count)


def _quarter(moment: datetime, count: int) -> str:
    q = (moment.month - 1) // 3 + 1
    if count == 3:
        return f"Q{q}"
    if count == 4:
        return f"{q}{['st', 'nd', 'rd', 'th'][q - 1]} quarter"
    return _pad(q, count)


def _fraction(moment: datetime, count: int) -> str:
    digits = f"{moment.microsecond:06d}000"
    return digits[:count] if count <= 9 else digits.ljust(count, "0")


def _hour12(moment: datetime, count: int) -> str:
    return _pad(moment.hour % 12 or 12, count)


def _offset_parts(moment: datetime) -> tuple[str, int, int, int]:
    delta = moment.utcoffset() or timedelta(0)
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return sign, total // 3600, total % 3600 // 60, total % 60


def _offset_x(moment: datetime, count: int, zero: str | None) -> str:
    sign, hours, minutes, seconds = _offset_parts(moment)
    if zero is not None and hours == minutes == seconds == 0:
        return zero
    if count == 1:
        return f"{sign}{hours:02d}" + (f"{minutes:02d}" if minutes else "")
    sep = ":" if count in (3, 5) else ""
    text = f"{sign}{hours:02d}{sep}{minutes:02d}"
    if count >= 4 and seconds:
        text += f"{sep}{seconds:02d}"
    return text


def _offset_z(moment: datetime, count: int) -> str:
    if count <= 3:
        return _offset_x(moment, 2, None)
    if count == 4:
        sign, hours, minutes, _ = _offset_parts(moment)
        return "GMT" if hours == minutes == 0 else f"GMT{sign}{hours:02d}:{minutes:02d}"
    return _offset_x(moment, 3, "Z")


def _offset_o(moment: datetime, count: int) -> str:
    sign, hours, minutes, _ = _offset_parts(moment)
    if hours == minutes == 0:
        return "GMT"
    if count == 4:
        return f"GMT{sign}{hours:02d}:{minutes:02d}"
    return f"GMT{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def _zone_id(moment: datetime, count: int) -> str:
    key = getattr(moment.tzinfo, "key", None)
    if key:
        return key
    return "Z" if moment.utcoffset() == timedelta(0) else _offset_x(moment, 3, "Z")


def _zone_name(moment: datetime, count: int) -> str:
    if count >= 4:
        return _zone_id(moment, count)
    return moment.tzname() or _zone_id(moment, count)


_FIELDS: dict[str, Any] = {
    "G": lambda m, c: "AD" if c < 4 else "Anno Domini",
    "y": _year,
    "u": _year,
    "Y": lambda m, c: _pad(m.isocalendar()[0] % 100, 2) if c == 2 else _pad(m.isocalendar()[0], c),
    "M": _month,
    "L": _month,
    "d": lambda m, c: _pad(m.day, c),
    "D": lambda m, c: _pad(m.timetuple().tm_yday, c),
    "Q": _quarter,
    "q": _quarter,
    "w": lambda m, c: _pad(m.isocalendar()[1], c),
    "W": lambda m, c: _pad((m.day - 1 + date(m.year, m.month, 1).weekday()) // 7 + 1, c),
    "E": _weekday,
    "e": _local_weekday,
    "c": _local_weekday,
    "a": lambda m, c: "AM" if m.hour < 12 else "PM",
    "H": lambda m, c: _pad(m.hour, c),
    "k": lambda m, c: _pad(m.hour or 24, c),
    "K": lambda m, c: _pad(m.hour % 12, c),
    "h": _hour12,
    "m": lambda m, c: _pad(m.minute, c),
    "s": lambda m, c: _pad(m.second, c),
    "S": _fraction,
    "n": lambda m, c: _pad(m.microsecond * 1000, c),
    "A": lambda m, c: _pad((m.hour * 3600 + m.minute * 60 + m.second) * 1000 + m.microsecond // 1000, c),
    "N": lambda m, c: _pad((m.hour * 3600 + m.minute * 60 + m.second) * 10**9 + m.microsecond * 1000, c),
    "X": lambda m, c: _offset_x(m, c, "Z"),
    "x": lambda m, c: _offset_x(m, c, None),
    "Z": _offset_z,
    "O": _offset_o,
    "V": _zone_id,
    "z": _zone_name,
}


def date_add(value: Any, amount: Any, unit: str, time_zone: str | None = None, existing: str | None = None) -> datetime:
    """Kestra's `dateAdd`: `value` plus `amount` `unit`s (SECONDS, MINUTES, HOURS, DAYS, WEEKS, MONTHS, YEARS…),
    days counted on the clock of `time_zone` when one is given."""
    tz = zone(time_zone)
    moment = to_datetime(value, existing, tz)
    if tz is not None:
        moment = moment.astimezone(tz)
    try:
        count = int(amount)
    except (TypeError, ValueError):
        raise DateError(f"dateAdd amount must be an integer, not {amount!r}") from None
    name = UNITS.get(str(unit).upper())
    if name is None:
        raise DateError(f"unknown dateAdd unit {unit!r} (use one of {', '.join(UNITS)})")
    months = {"months": 1, "years": 12, "decades": 120, "centuries": 1200}.get(name)
    if months:
        return add_months(moment, count * months)
    seconds = {"nanos": 1e-9, "micros": 1e-6, "millis": 1e-3, "seconds": 1, "minutes": 60, "hours": 3600}
    seconds |= {"half_days": 43200, "days": 86400, "weeks": 604800}
    if name in ("days", "weeks") and isinstance(moment.tzinfo, ZoneInfo):
        local = moment.replace(tzinfo=None) + timedelta(days=count * (7 if name == "weeks" else 1))
        return local.replace(tzinfo=moment.tzinfo)
    return moment + timedelta(seconds=count * seconds[name])


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus `months` months, the day clamped to the month's length (Java's plusMonths)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def timestamp(value: Any, unit: str = "seconds", time_zone: str | None = None, existing: str | None = None) -> int:
    """Epoch of `value` in seconds, milli-, micro- or nanoseconds (a value without a zone read in `time_zone`)."""
    moment = to_datetime(value, existing, zone(time_zone))
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    factor = {"seconds": None, "millis": 1000, "micros": 1, "nanos": -1000}[unit]
    if factor is None:
        return micros // 1_000_000
    if factor == -1000:
        return micros * 1000
    return micros // 1000 if factor == 1000 else micros


def now(time_zone: str | None = None) -> datetime:
    """The current time, timezone-aware (UTC unless `time_zone`)."""
    return datetime.now(zone(time_zone) or UTC)
