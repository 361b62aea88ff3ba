"""JSON to and from Ion: `JsonToIon` (alias JsonReader) and `IonToJson` (alias JsonWriter), with Kestra's properties.

`newLine: true` (the default) is JSON lines: one value per line. `newLine: false` reads one JSON document (a list is
one row per item) and writes a JSON array, or the single row itself when there is only one, as Kestra does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from plugins.core._props import as_bool
from plugins.ion import jsonable, read_file, write_rows
from plugins.serdes.common import SerdesTask, charset_of, zone_of
from runner.api import RunContext, TaskFailed
from runner.types import Dyn


class JsonToIon(SerdesTask):
    """Convert a JSON file (JSON lines, or one document) to Ion."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.json.JsonToIon"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.serdes.json.JsonReader",)

    charset: Dyn[str] = "UTF-8"
    """The file's character set."""
    newLine: Dyn[bool] = True
    """One JSON value per line (JSON lines); false: one document, a list giving one row per item."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = self.source(ctx)
        local = self.scratch(ctx)
        lines = as_bool(self.newLine, "newLine")
        try:
            with source.open(encoding=charset_of(self.charset)) as handle, local.open("w", encoding="utf-8") as out:
                rows = _lines(handle, source.name) if lines else _document(handle.read(), source.name)
                size = write_rows(out, rows)
        except UnicodeDecodeError as exc:
            raise TaskFailed(f"{source.name} is not {self.charset} text ({exc.reason}); set charset") from None
        return self.store(ctx, local, size)


def _lines(handle: Any, name: str) -> Iterator[Any]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise TaskFailed(
                f"line {number} of {name} is not JSON ({_reason(exc)}). With newLine: true each line holds one JSON "
                "value; set newLine: false for a file holding one JSON document"
            ) from None


def _document(text: str, name: str) -> Iterator[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFailed(f"{name} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if isinstance(value, list):
        yield from value
    else:
        yield value


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc)


class IonToJson(SerdesTask):
    """Convert an Ion file to JSON lines (or to one JSON array)."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.json.IonToJson"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.serdes.json.JsonWriter",)
    output_suffix: ClassVar[str] = ".jsonl"

    charset: Dyn[str] = "UTF-8"
    """The character set of the file written."""
    newLine: Dyn[bool] = True
    """One JSON value per line (JSON lines); false: one JSON array (or the one row)."""
    timeZoneId: Dyn[str] | None = None
    """The time zone a date-time with an offset is shown in (the machine's by default)."""
    shouldKeepAnnotations: Dyn[bool] = False
    """Keep Ion annotations: an annotated value becomes {"ion_annotations": [...], "value": ...}."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = self.source(ctx)
        lines = as_bool(self.newLine, "newLine")
        zone = zone_of(self.timeZoneId)
        keep = as_bool(self.shouldKeepAnnotations, "shouldKeepAnnotations")
        local = self.scratch(ctx)
        rows = (jsonable(row, zone) for row in read_file(source, source.name, annotations_kept=keep))
        with local.open("w", encoding=charset_of(self.charset)) as out:
            count = _write_lines(out, rows) if lines else _write_array(out, rows)
        name = self.result_name() if lines else str(Path(self.result_name()).with_suffix(".json"))
        return self.store(ctx, local, count, name)


_END = object()


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _write_lines(out: Any, rows: Iterator[Any]) -> int:
    count = 0
    for row in rows:
        out.write(_dump(row) + "\n")
        count += 1
    return count


def _write_array(out: Any, rows: Iterator[Any]) -> int:
    first = next(rows, _END)
    if first is _END:
        return 0
    second = next(rows, _END)
    if second is _END:
        out.write(_dump(first))
        return 1
    out.write("[" + _dump(first) + "," + _dump(second))
    count = 2
    for row in rows:
        out.write("," + _dump(row))
        count += 1
    out.write("]")
    return count
