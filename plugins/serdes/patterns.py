"""Java `DateTimeFormatter` patterns as the serdes tasks take them (`dateFormat: yyyy-MM-dd`,
`datetimeFormat: yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]`), with their optional `[...]` sections.

Formatting prints an optional section when the value has every field it names (a date has no hour, a value without
a zone has no offset), as Java does; the fields themselves are printed by the expressions' date formatter. Parsing
reads the letters y u M d H h m s S a X x Z and literals, each optional section matching or not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache

from runner.api import TaskFailed
from runner.expressions.dates import format_pattern

_TOKEN = re.compile(r"'(?:[^']|'')*'|\[|\]|([A-Za-z])\1*|.", re.DOTALL)
_TIME_LETTERS = set("HhKkmsSaAnN")
_DATE_LETTERS = set("yuMLdDEeQqwWYG")
_OFFSET_LETTERS = set("XxZOVzv")


class PatternError(TaskFailed):
    """A pattern or a value that does not fit it (the caller says which row and column)."""


@dataclass(frozen=True)
class _Section:
    """Part of a pattern: literal text and fields (`text`), or an optional section (`inner`)."""

    text: str = ""
    inner: tuple[_Section, ...] | None = None


@cache
def _sections(pattern: str) -> tuple[_Section, ...]:
    stack: list[list[_Section]] = [[]]
    for token in _TOKEN.finditer(pattern):
        piece = token.group(0)
        if piece == "[":
            stack.append([])
        elif piece == "]":
            if len(stack) == 1:
                raise PatternError(f"pattern {pattern!r} closes an optional section it did not open")
            inner = tuple(stack.pop())
            stack[-1].append(_Section(inner=inner))
        else:
            stack[-1].append(_Section(text=piece))
    if len(stack) != 1:
        raise PatternError(f"pattern {pattern!r} leaves an optional section open")
    return tuple(stack[0])


def _letters(sections: tuple[_Section, ...]) -> set[str]:
    found: set[str] = set()
    for section in sections:
        if section.inner is not None:
            found |= _letters(section.inner)
        elif section.text[:1].isalpha():
            found.add(section.text[0])
    return found


def format_value(value: date | time | datetime, pattern: str) -> str:
    """`value` printed with `pattern` (a date has no time fields, a naive value no offset: optional sections
    that need them are left out; a required one is an error)."""
    if isinstance(value, datetime):
        moment, have = value, _DATE_LETTERS | _TIME_LETTERS
    elif isinstance(value, date):
        moment, have = datetime(value.year, value.month, value.day), set(_DATE_LETTERS)
    else:
        moment = datetime(1970, 1, 1, value.hour, value.minute, value.second, value.microsecond, value.tzinfo)
        have = set(_TIME_LETTERS)
    if moment.tzinfo is not None:
        have |= _OFFSET_LETTERS
    return "".join(_format(_sections(pattern), moment, have, pattern, optional=False))


def _format(
    sections: tuple[_Section, ...], moment: datetime, have: set[str], pattern: str, optional: bool
) -> list[str]:
    out: list[str] = []
    for section in sections:
        if section.inner is not None:
            if _letters(section.inner) <= have:
                out.extend(_format(section.inner, moment, have, pattern, optional=True))
            continue
        letter = section.text[0]
        if letter.isalpha() and letter not in have:
            raise PatternError(f"the value {moment!r} has no field {section.text!r} that the pattern {pattern!r} needs")
        out.append(format_pattern(moment, section.text) if letter.isalpha() or letter == "'" else section.text)
    return out


_FIELDS = {
    "y": ("year", r"[+-]?\d{{{n},9}}"),
    "u": ("year", r"[+-]?\d{{{n},9}}"),
    "M": ("month", r"\d{{{n},2}}"),
    "d": ("day", r"\d{{{n},2}}"),
    "H": ("hour", r"\d{{{n},2}}"),
    "h": ("hour12", r"\d{{{n},2}}"),
    "m": ("minute", r"\d{{{n},2}}"),
    "s": ("second", r"\d{{{n},2}}"),
    "S": ("fraction", r"\d{{{n}}}"),
    "a": ("ampm", r"(?i:AM|PM)"),
}
_OFFSET = r"Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?"


@cache
def _parser(pattern: str) -> re.Pattern[str]:
    counter = iter(range(1_000_000))

    def build(sections: tuple[_Section, ...]) -> str:
        out: list[str] = []
        for section in sections:
            if section.inner is not None:
                out.append(f"(?:{build(section.inner)})?")
                continue
            piece = section.text
            letter = piece[0]
            if piece.startswith("'"):
                out.append(re.escape(piece[1:-1].replace("''", "'") if len(piece) > 2 else "'"))
            elif letter in _FIELDS:
                name, regex = _FIELDS[letter]
                if letter == "y" and len(piece) == 2:
                    name, regex = "year2", r"\d{{2}}"
                if letter == "M" and len(piece) >= 3:
                    name, regex = "monthname", r"[A-Za-z]+"
                out.append(f"(?P<{name}_{next(counter)}>{regex.format(n=len(piece))})")
            elif letter in "XxZ":
                out.append(f"(?P<offset_{next(counter)}>{_OFFSET})")
            elif letter.isalpha():
                raise PatternError(f"pattern letter {piece!r} (in {pattern!r}) is not supported for reading")
            else:
                out.append(re.escape(piece))
        return "".join(out)

    return re.compile(build(_sections(pattern)))


_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def parse_parts(text: str, pattern: str) -> dict[str, str]:
    """The fields of `text` read with `pattern` (field name -> digits); PatternError when it does not match."""
    match = _parser(pattern).fullmatch(text.strip())
    if match is None:
        raise PatternError(f"{text!r} does not match the format {pattern!r}")
    return {key.rsplit("_", 1)[0]: value for key, value in match.groupdict().items() if value is not None}


def _offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60 + int(digits[4:6] or 0)
    return timezone(sign * timedelta(seconds=seconds))


def _time_of(parts: dict[str, str]) -> time:
    hour = int(parts.get("hour", 0))
    if "hour12" in parts:
        hour = int(parts["hour12"]) % 12 + (12 if parts.get("ampm", "").upper() == "PM" else 0)
    fraction = parts.get("fraction", "")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    tz = _offset(parts["offset"]) if "offset" in parts else None
    return time(hour, int(parts.get("minute", 0)), int(parts.get("second", 0)), micro, tzinfo=tz)


def _date_of(parts: dict[str, str]) -> date:
    year = int(parts["year"]) if "year" in parts else 2000 + int(parts.get("year2", 70)) % 100
    month = int(parts.get("month", 1))
    if "monthname" in parts:
        month = _MONTHS.index(parts["monthname"][:3].lower()) + 1
    return date(year, month, int(parts.get("day", 1)))


def parse_date(text: str, pattern: str) -> date:
    return _date_of(parse_parts(text, pattern))


def parse_time(text: str, pattern: str) -> time:
    return _time_of(parse_parts(text, pattern))


def parse_datetime(text: str, pattern: str) -> datetime:
    """A date-time read with `pattern`; naive when the text holds no offset."""
    parts = parse_parts(text, pattern)
    return datetime.combine(_date_of(parts), _time_of(parts))
