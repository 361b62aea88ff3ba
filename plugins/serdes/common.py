"""What the serdes tasks share: the `from` file, the stored result (`uri`, `size`), Kestra's `onBadLines`, and how a
text writer (IonToCsv, IonToExcel) prints a date, a time or a date-time (Kestra's `AbstractTextWriter`)."""

from __future__ import annotations

import codecs
import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from plugins.core._props import as_bool
from plugins.extras import require
from plugins.serdes.patterns import PatternError, format_value
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

EXTRA = "serdes"
OnBadLines = Literal["ERROR", "WARN", "SKIP"]


def library(module: str, task: Task, package: str | None = None) -> ModuleType:
    """A format library of the serdes extra (fastavro, pyarrow, openpyxl), or the failure that names the extra."""
    return require(module, EXTRA, task.type, package)


def system_zone() -> str:
    """The machine's time zone, Kestra's default `timeZoneId` (ZoneId.systemDefault())."""
    local = datetime.now().astimezone().tzinfo
    key = getattr(local, "key", None)
    return str(key) if key else "UTC"


def zone_of(name: str | None, prop: str = "timeZoneId") -> tzinfo:
    if not name:
        return ZoneInfo(system_zone()) if system_zone() != "UTC" else UTC
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TaskFailed(f"{prop} {name!r} is not a time zone (give a name such as Europe/Paris or UTC)") from None


def charset_of(name: str | None) -> str:
    """A charset name Python knows (Java's names: UTF-8, ISO-8859-1, windows-1252, ...)."""
    text = (name or "UTF-8").strip()
    try:
        return codecs.lookup(text).name
    except LookupError:
        raise TaskFailed(f"charset {text!r} is not a known character set (e.g. UTF-8, ISO-8859-1)") from None


def single_char(value: Any, prop: str) -> str:
    text = "" if value is None else str(value)
    if len(text) != 1:
        raise TaskFailed(f"{prop} must be one character, not {text!r}")
    return text


def on_bad_lines(value: Any) -> str:
    text = str(value or "ERROR").strip().upper()
    if text not in ("ERROR", "WARN", "SKIP"):
        raise TaskFailed(f"onBadLines must be ERROR, WARN or SKIP, not {value!r}")
    return text


class SerdesTask(Task):
    """A conversion of one stored file into another (`from` a kestra:/// URI)."""

    output_suffix: ClassVar[str] = ".ion"

    from_: str = Field(alias="from")
    """The file to convert: a kestra:/// URI (an output or an input of type FILE)."""

    def source(self, ctx: RunContext) -> Path:
        uri = str(self.from_).strip()
        if not uri.startswith("kestra://"):
            raise TaskFailed(
                f"from must be the kestra:/// URI of a stored file (an output such as {{{{ outputs.task.uri }}}} or a "
                f"FILE input), not {uri[:120]!r}"
            )
        return ctx.storage.path(uri)

    def result_name(self, source: str | None = None) -> str:
        """The stored result's name: the source file's stem with this task's suffix (`orders.csv` -> `orders.ion`)."""
        stem = PurePosixPath(source or str(self.from_).strip()).stem or self.id
        return f"{stem}{self.output_suffix}"

    def scratch(self, ctx: RunContext) -> Path:
        """A new file in the working directory, for the result before it is stored."""
        return ctx.workdir / f".{self.id}-{uuid.uuid4().hex[:8]}{self.output_suffix}"

    def store(self, ctx: RunContext, local: Path, size: int, name: str | None = None) -> dict[str, Any]:
        try:
            return {"uri": ctx.storage.put(local, name or self.result_name()), "size": size}
        finally:
            local.unlink(missing_ok=True)


def bad_line(ctx: RunContext, policy: str, message: str) -> None:
    """A bad line or record: ERROR fails the task with `message`, WARN logs it and goes on, SKIP goes on."""
    if policy == "ERROR":
        raise TaskFailed(message)
    if policy == "WARN":
        ctx.logger.warn(message)


class TextWriter(SerdesTask):
    """How a writer of text (CSV, Excel) prints temporal values (Kestra's `AbstractTextWriter`)."""

    dateFormat: str = "yyyy-MM-dd"
    """Java pattern for dates."""
    timeFormat: str = "HH:mm:ss[XXX]"
    """Java pattern for times."""
    dateTimeFormat: str = "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]"
    """Java pattern for date-times."""
    timeZoneId: Dyn[str] | None = None
    """The time zone a date-time with an offset is shown in (the machine's by default); one in UTC, or without
    a zone, is shown in UTC, as Kestra does."""

    def text_converter(self) -> Callable[[Any], str | None]:
        """value -> its text (None for null), Kestra's rules: numbers and booleans as Java prints them, dates,
        times and date-times with the task's patterns, anything nested as JSON."""
        zone = zone_of(self.timeZoneId)
        date_format, time_format, datetime_format = self.dateFormat, self.timeFormat, self.dateTimeFormat

        def convert(value: Any) -> str | None:
            try:
                if isinstance(value, datetime):
                    if value.tzinfo is None or value.utcoffset() == UTC.utcoffset(None):
                        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
                    else:
                        moment = value.astimezone(zone)
                    return format_value(moment, datetime_format)
                if isinstance(value, date):
                    return format_value(value, date_format)
                if isinstance(value, time):
                    return format_value(value, time_format)
            except PatternError as exc:
                raise TaskFailed(f"{exc.message}: check dateFormat, timeFormat and dateTimeFormat") from None
            return text_of(value)

        return convert


def text_of(value: Any) -> str | None:
    """A value as Java's toString() prints it (1.5, 1.0E10, true), None for null; maps and lists as JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, int | Decimal | str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return str(value)


def java_double(value: float) -> str:
    """Java's Double.toString: 1.0, 0.001, 1.0E7, NaN, Infinity."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    magnitude = abs(value)
    if value == 0 or 1e-3 <= magnitude < 1e7:
        text = repr(value)
        return text if "." in text or "e" in text else text + ".0"
    number = Decimal(repr(value))
    sign, digits, _ = number.as_tuple()
    shown = "".join(str(d) for d in digits).rstrip("0") or "0"
    return f"{'-' if sign else ''}{shown[0]}.{shown[1:] or '0'}E{number.adjusted()}"


def truthy(value: Any, prop: str) -> bool:
    return as_bool(value, prop)
