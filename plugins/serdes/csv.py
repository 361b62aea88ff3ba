"""CSV to and from Ion: `CsvToIon` (alias CsvReader) and `IonToCsv` (alias CsvWriter), with Kestra's properties.

CsvToIon reads every value as text (Kestra does not infer types: a typed schema is given where the rows are
written, e.g. IonToAvro); `\\N` is null. A row whose field count differs from the header's, or a quoted field
with text after its closing quote, is a bad line: `onBadLines` says whether it fails the task (with its line
number), is logged and skipped, or is skipped.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

from plugins.core._props import as_bool, as_int
from plugins.ion import read_file, write_rows
from plugins.serdes.common import (
    OnBadLines,
    SerdesTask,
    TextWriter,
    bad_line,
    charset_of,
    on_bad_lines,
    single_char,
)
from runner.api import RunContext, TaskFailed
from runner.types import Dyn

NULL_TEXT = "\\N"
MAX_FIELD = 16 * 1024 * 1024
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # the process-wide parser limit; maxFieldSize is checked per task


class CsvToIon(SerdesTask):
    """Convert a CSV file to Ion, Kestra's row format: one map per line (header: true) or one list."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.csv.CsvToIon"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.serdes.csv.CsvReader",)

    header: Dyn[bool] = True
    """The first line names the columns (each row becomes a map); false: each row is a list."""
    fieldSeparator: Dyn[str] = ","
    """The character between fields."""
    textDelimiter: Dyn[str] = '"'
    """The character that quotes a field."""
    skipEmptyRows: Dyn[bool] = False
    """Skip blank lines (otherwise a blank line is a row of one empty field, a bad line under a header)."""
    errorOnDifferentFieldCount: Dyn[bool] | None = None
    """Deprecated (use onBadLines): true fails on a row whose field count differs from the header's."""
    onBadLines: Dyn[OnBadLines] = "ERROR"
    """A bad line (field count differs from the header's, text after a closing quote): ERROR fails the task
    with its line number, WARN logs and skips it, SKIP skips it."""
    onEmptyHeader: Dyn[Literal["DROP", "RENAME"]] = "DROP"
    """Header columns without a name: DROP the trailing ones (a trailing separator), RENAME them col_0, col_1, …"""
    skipRows: Dyn[int] = 0
    """Rows to skip after the header (before the first row kept)."""
    charset: Dyn[str] = "UTF-8"
    """The file's character set (a UTF-8 byte-order mark is dropped)."""
    maxBufferSize: Dyn[int] = MAX_FIELD
    """Largest record, in characters."""
    allowExtraCharsAfterClosingQuote: Dyn[bool] = False
    """Accept text after a quoted field's closing quote (kept in the field) instead of a bad line."""
    maxFieldSize: Dyn[int] = MAX_FIELD
    """Largest field, in characters: a longer one fails the task."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = self.source(ctx)
        charset = charset_of(self.charset)
        if charset == "utf-8":
            charset = "utf-8-sig"
        policy = on_bad_lines(self.onBadLines)
        if self.errorOnDifferentFieldCount is not None and not as_bool(
            self.errorOnDifferentFieldCount, "errorOnDifferentFieldCount"
        ):
            policy = "SKIP" if policy == "ERROR" else policy
        local = self.scratch(ctx)
        try:
            with source.open(encoding=charset, newline="") as handle, local.open("w", encoding="utf-8") as out:
                size = write_rows(out, self._rows(ctx, handle, policy, source.name))
        except UnicodeDecodeError as exc:
            raise TaskFailed(
                f"{source.name} is not {self.charset} text (byte {exc.start}: {exc.reason}); set charset to the "
                "file's character set (e.g. ISO-8859-1, windows-1252)"
            ) from None
        return self.store(ctx, local, size)

    def _rows(self, ctx: RunContext, handle: Any, policy: str, name: str) -> Iterator[Any]:
        separator = single_char(self.fieldSeparator, "fieldSeparator")
        quote = single_char(self.textDelimiter, "textDelimiter")
        lenient = as_bool(self.allowExtraCharsAfterClosingQuote, "allowExtraCharsAfterClosingQuote")
        skip_empty = as_bool(self.skipEmptyRows, "skipEmptyRows")
        header = as_bool(self.header, "header")
        to_skip = as_int(self.skipRows, "skipRows")
        max_field = min(as_int(self.maxFieldSize, "maxFieldSize"), as_int(self.maxBufferSize, "maxBufferSize"))
        reader = csv.reader(handle, delimiter=separator, quotechar=quote, strict=not lenient, doublequote=True)
        names: list[str] | None = None
        width = 0
        for line, record in _records(reader, ctx, policy, name):
            if not record:
                if skip_empty:
                    continue
                record = [""]
            for value in record:
                if len(value) > max_field:
                    raise TaskFailed(
                        f"line {line} of {name}: a field holds {len(value)} characters, more than maxFieldSize "
                        f"({max_field}); raise maxFieldSize if the file is right"
                    )
            if header and names is None:
                names, width = self._header(ctx, record)
                continue
            if to_skip > 0:
                to_skip -= 1
                continue
            values = [None if value == NULL_TEXT else value for value in record]
            if names is None:
                yield values
                continue
            if len(record) != len(names):
                bad_line(
                    ctx,
                    policy,
                    f"Bad line encountered (field count mismatch) at line {line} of {name}: expected {len(names)} "
                    f"fields as in the header, got {len(record)}. Fix the line, or set onBadLines to WARN or SKIP "
                    "to leave such lines out",
                )
                continue
            yield {names[i]: values[i] for i in range(width)}

    def _header(self, ctx: RunContext, record: list[str]) -> tuple[list[str], int]:
        names = list(record)
        if str(self.onEmptyHeader).upper() == "RENAME":
            taken = set(names)
            for index, title in enumerate(names):
                if title:
                    continue
                candidate, attempt = f"col_{index}", 1
                while candidate in taken:
                    attempt += 1
                    candidate = f"col_{index}_{attempt}"
                names[index] = candidate
                taken.add(candidate)
            return names, len(names)
        kept = max((i + 1 for i, title in enumerate(names) if title), default=len(names))
        kept = max(kept, 1)
        if kept < len(names):
            ctx.logger.warn(
                f"Dropped {len(names) - kept} trailing unnamed header column(s); their values are not kept. Set "
                "onEmptyHeader: RENAME to keep them"
            )
        if len(set(names[:kept])) < kept:
            ctx.logger.warn(
                "The header repeats a column name (or leaves one empty): such columns share one key and only the last "
                "value is kept. Set onEmptyHeader: RENAME to keep every column"
            )
        return names, kept


def _records(reader: Any, ctx: RunContext, policy: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, fields); a record the parser refuses is a bad line."""
    start = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            bad_line(
                ctx,
                policy,
                f"line {reader.line_num} of {name} is not valid CSV: {exc}. A quoted field must end at its closing "
                "quote (a quote inside it is doubled); fix the line, set allowExtraCharsAfterClosingQuote: true, or "
                "set onBadLines to WARN or SKIP to leave such lines out",
            )
            start = reader.line_num + 1
            continue
        yield start, record
        start = reader.line_num + 1


QuoteMode = Literal["ALWAYS", "REQUIRED", "NON_NUMERIC"]


class IonToCsv(TextWriter):
    """Convert an Ion file to CSV: a header from the first row's keys, then one line per row."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.csv.IonToCsv"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.serdes.csv.CsvWriter",)
    output_suffix: ClassVar[str] = ".csv"

    header: Dyn[bool] = True
    """Write the first row's keys as the first line."""
    fieldSeparator: Dyn[str] = ","
    """The character between fields."""
    textDelimiter: Dyn[str] = '"'
    """The character that quotes a field."""
    lineDelimiter: Dyn[str] = "\n"
    """What ends each line."""
    alwaysDelimitText: Dyn[bool] = False
    """Deprecated (use quoteMode): quote every field."""
    quoteMode: Dyn[QuoteMode] | None = None
    """ALWAYS quotes every field, REQUIRED only those holding the separator, the quote or a line break,
    NON_NUMERIC all but numbers. Takes precedence over alwaysDelimitText."""
    charset: Dyn[str] = "UTF-8"
    """The character set of the file written."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = self.source(ctx)
        header = as_bool(self.header, "header")
        field = self._quoter()
        separator = single_char(self.fieldSeparator, "fieldSeparator")
        line_end = str(self.lineDelimiter)
        convert = self.text_converter()
        local = self.scratch(ctx)
        count = 0
        with local.open("w", encoding=charset_of(self.charset), newline="") as out:
            columns: list[str] | None = None
            for row in read_file(source, source.name):
                if isinstance(row, list):
                    if header:
                        raise TaskFailed(
                            f"row {count + 1} of {source.name} is a list, not a map: a header needs named columns; "
                            "set header: false to write lists"
                        )
                    values = [convert(value) for value in row]
                elif isinstance(row, dict):
                    if columns is None:
                        columns = list(row)
                        if header:
                            out.write(separator.join(field(name) for name in columns) + line_end)
                    values = [convert(row.get(name)) for name in columns]
                else:
                    values = [convert(row)]
                out.write(separator.join(field(value) for value in values) + line_end)
                count += 1
        return self.store(ctx, local, count)

    def _quoter(self) -> Callable[[str | None], str]:
        quote = single_char(self.textDelimiter, "textDelimiter")
        separator = single_char(self.fieldSeparator, "fieldSeparator")
        mode = str(self.quoteMode).upper() if self.quoteMode else None
        if mode is None:
            mode = "ALWAYS" if as_bool(self.alwaysDelimitText, "alwaysDelimitText") else "REQUIRED"
        if mode not in ("ALWAYS", "REQUIRED", "NON_NUMERIC"):
            raise TaskFailed(f"quoteMode must be ALWAYS, REQUIRED or NON_NUMERIC, not {self.quoteMode!r}")
        special = (separator, quote, "\r", "\n")

        def field(value: str | None) -> str:
            if value is None:
                return ""
            needed = any(char in value for char in special)
            if needed or mode == "ALWAYS" or (mode == "NON_NUMERIC" and not _numeric(value)):
                return quote + value.replace(quote, quote + quote) + quote
            return value

        return field


def _numeric(text: str) -> bool:
    """Kestra's NON_NUMERIC test: an optional sign, digits and at most one decimal point."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or body.count(".") > 1:
        return False
    return all(char.isdigit() or char == "." for char in body) and body != "."
