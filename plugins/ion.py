"""Kestra's row files: Amazon Ion text, one top-level value per line (what Kestra's `FileSerde` writes).

Kestra passes rows between tasks in this form: a jdbc `fetchType: STORE` writes it, the serdes tasks convert it to
and from CSV, JSON, Avro, Parquet and Excel, and the core storage tasks split, filter and deduplicate it. Its Java
types map to Ion as Kestra's `IonModule` writes them, which is how they are read back here:

| Python | Ion | Kestra (Java) |
| --- | --- | --- |
| `date` | a day-precision timestamp (`2024-01-31`) | LocalDate |
| `datetime` with a zone | a timestamp with its offset (`2024-01-31T10:00:00.000000Z`) | Instant, ZonedDateTime |
| `datetime` without a zone | `LocalDateTime::"2024-01-31T10:00:00"` | LocalDateTime |
| `time` | `LocalTime::"10:00:00"` (`OffsetTime::"10:00:00+02:00"` with a zone) | LocalTime, OffsetTime |
| `Decimal` | a decimal (`12.50`) | BigDecimal |
| `bytes` | a blob | byte[] |

A timestamp read back at midnight UTC (or without an offset) is a date, as Kestra's `IonParser` reads it. The
library is amazon-ion (its C extension), a dependency of gitsync itself: jdbc STORE needs it without an extra.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from amazon.ion import simpleion
from amazon.ion.core import IonType, Timestamp, TimestampPrecision
from amazon.ion.exceptions import IonException
from amazon.ion.simple_types import IonPyNull, IonPyText

from runner.api import TaskFailed
from runner.durations import format_duration

_ANNOTATED = ("LocalDateTime", "LocalTime", "OffsetTime", "OffsetDateTime", "ZonedDateTime", "LocalDate", "Instant")


def to_ion(value: Any) -> Any:
    """A Python value as the amazon-ion writer should write it, in Kestra's forms (see the module docstring)."""
    if value is None or isinstance(value, bool | int | float | str | Decimal | bytes):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return _annotated("LocalDateTime", value.isoformat())
        return value
    if isinstance(value, date):
        return Timestamp(value.year, value.month, value.day, precision=TimestampPrecision.DAY)
    if isinstance(value, time):
        return _annotated("LocalTime" if value.tzinfo is None else "OffsetTime", value.isoformat())
    if isinstance(value, dict):
        return {str(key): to_ion(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_ion(item) for item in value]
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _annotated(annotation: str, text: str) -> IonPyText:
    return IonPyText.from_value(IonType.STRING, text, annotations=(annotation,))


def dumps_row(value: Any) -> str:
    """One row as one line of Ion text (without the newline)."""
    text: str = simpleion.dumps(to_ion(value), binary=False, omit_version_marker=True)
    return text


def write_rows(handle: IO[str], rows: Iterable[Any]) -> int:
    """Write `rows` to a text file, one per line; returns how many (a None row is skipped, as Kestra does)."""
    count = 0
    for row in rows:
        if row is None:
            continue
        handle.write(dumps_row(row))
        handle.write("\n")
        count += 1
    return count


def write_file(path: Path, rows: Iterable[Any]) -> int:
    """Write `rows` to a new Ion file at `path`; returns how many rows."""
    with path.open("w", encoding="utf-8") as handle:
        return write_rows(handle, rows)


def from_ion(value: Any, annotations_kept: bool = False) -> Any:
    """A value the amazon-ion reader returned, as a plain Python value (see the module docstring); with
    `annotations_kept`, an annotated string is `{"ion_annotations": [...], "value": text}` (IonToJson's
    shouldKeepAnnotations) instead of the date or time it stands for."""
    if value is None or isinstance(value, IonPyNull):
        return None
    ion_type = getattr(value, "ion_type", None)
    annotations = [str(getattr(a, "text", a)) for a in getattr(value, "ion_annotations", ()) or ()]
    if ion_type in (IonType.STRING, IonType.SYMBOL):
        text = str(getattr(value, "text", value)) if ion_type is IonType.SYMBOL else str(value)
        if annotations and annotations_kept:
            return {"ion_annotations": annotations, "value": text}
        return _from_annotated(annotations[0], text) if annotations and annotations[0] in _ANNOTATED else text
    if ion_type is IonType.BOOL or isinstance(value, bool):
        return bool(value)
    if ion_type is IonType.INT:
        return int(value)
    if ion_type is IonType.FLOAT:
        return float(value)
    if ion_type is IonType.DECIMAL:
        return Decimal(value)
    if ion_type is IonType.TIMESTAMP or isinstance(value, datetime):
        return _from_timestamp(value)
    if ion_type in (IonType.BLOB, IonType.CLOB):
        return bytes(value)
    if ion_type is IonType.STRUCT or isinstance(value, dict):
        return {str(key): from_ion(item, annotations_kept) for key, item in value.items()}
    if ion_type in (IonType.LIST, IonType.SEXP) or isinstance(value, list | tuple):
        return [from_ion(item, annotations_kept) for item in value]
    return value


def _from_annotated(annotation: str, text: str) -> Any:
    try:
        if annotation in ("LocalDateTime", "OffsetDateTime", "ZonedDateTime", "Instant"):
            return datetime.fromisoformat(text.split("[", 1)[0].replace("Z", "+00:00"))
        if annotation == "LocalDate":
            return date.fromisoformat(text)
        return time.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text


def _from_timestamp(value: Any) -> date | datetime:
    precision = getattr(value, "precision", None)
    if precision in (TimestampPrecision.YEAR, TimestampPrecision.MONTH, TimestampPrecision.DAY):
        return date(value.year, value.month, value.day)
    moment = datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, value.tzinfo
    )
    offset = moment.utcoffset()
    if (offset is None or offset == timedelta(0)) and moment.time() == time(0):
        return moment.date()
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def read_rows(handle: IO[bytes], where: str = "the file", annotations_kept: bool = False) -> Iterator[Any]:
    """The rows of an Ion file (text or binary), one at a time, as plain Python values; TaskFailed, saying which
    row, when the file is not Ion."""
    row = 0
    try:
        for value in simpleion.load(handle, single_value=False, parse_eagerly=False):
            row += 1
            yield from_ion(value, annotations_kept)
    except IonException as exc:
        raise TaskFailed(
            f"{where} is not a valid Ion file (Kestra's row format): reading row {row + 1} failed "
            f"({str(exc).strip() or 'cut short'})."
            " Give a file that a Kestra task or a serdes task wrote (…ToIon), or convert it first"
        ) from None


def loads_row(line: str, where: str = "the file") -> Any:
    """One line of an Ion file (one row) as a plain Python value; TaskFailed when it is not Ion."""
    try:
        return from_ion(simpleion.loads(line, single_value=True))
    except (IonException, ValueError) as exc:
        raise TaskFailed(
            f"a line of {where} is not an Ion value ({str(exc).strip() or 'cut short'}): {line[:120]!r}"
        ) from None


def read_file(path: Path, where: str | None = None, annotations_kept: bool = False) -> Iterator[Any]:
    """The rows of the Ion file at `path` (see `read_rows`)."""
    with path.open("rb") as handle:
        yield from read_rows(handle, where or path.name, annotations_kept)


def jsonable(value: Any, zone: tzinfo | None = None) -> Any:
    """A row value as JSON holds it (dates and times in ISO-8601, decimals as numbers, bytes in base64); a
    date-time with an offset other than UTC is shown in `zone` when one is given."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent == 0 else float(value)
    if isinstance(value, datetime):
        if zone is not None and value.utcoffset() not in (None, timedelta(0)):
            value = value.astimezone(zone)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(key): jsonable(item, zone) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item, zone) for item in value]
    return str(value)
