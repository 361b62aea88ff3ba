"""Avro to and from Ion (fastavro, in the `serdes` extra): `IonToAvro` (alias AvroWriter), `AvroToIon` (alias
AvroReader), and the conversion options IonToAvro shares with IonToParquet (Kestra's `AbstractAvroConverter`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from plugins.core._props import as_bool, as_int, as_str_list
from plugins.ion import read_file, write_rows
from plugins.serdes.avro_schema import CellError, Converter, infer_schema
from plugins.serdes.common import OnBadLines, SerdesTask, bad_line, library, on_bad_lines, single_char, zone_of
from runner.api import RunContext, TaskFailed
from runner.types import Dyn

TRUE_VALUES = ["t", "true", "enabled", "1", "on", "yes"]
FALSE_VALUES = ["f", "false", "disabled", "0", "off", "no", ""]
NULL_VALUES = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "1.#IND",
    "1.#QNAN",
    "NA",
    "n/a",
    "nan",
    "null",
]


class AvroConverting(SerdesTask):
    """Rows of an Ion file turned into records of an Avro schema (given, or inferred from the first rows)."""

    schema_: str | dict[str, Any] | None = Field(default=None, alias="schema")
    """The Avro schema (JSON) of the records; without it, one is inferred from the first numberOfRowsToScan rows
    (every field nullable, text as string)."""
    numberOfRowsToScan: Dyn[int] = 100
    """Rows read to infer the schema when none is given."""
    trueValues: Dyn[list[str]] = TRUE_VALUES
    """Texts read as true (for a boolean field)."""
    falseValues: Dyn[list[str]] = FALSE_VALUES
    """Texts read as false (for a boolean field)."""
    nullValues: Dyn[list[str]] = NULL_VALUES
    """Texts read as null (for a nullable field)."""
    dateFormat: str = "yyyy-MM-dd[XXX]"
    """Java pattern that reads a date."""
    timeFormat: str = "HH:mm[:ss][.SSSSSS][XXX]"
    """Java pattern that reads a time."""
    datetimeFormat: str = "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]"
    """Java pattern that reads a date-time."""
    decimalSeparator: Dyn[str] = "."
    """The decimal point of numbers in text (',' for European data)."""
    strictSchema: Dyn[bool] = False
    """A row holding a field the schema does not declare is bad."""
    inferAllFields: Dyn[bool] = False
    """Read trueValues, falseValues and nullValues as booleans and nulls in every field, and infer the schema
    from every row (not only numberOfRowsToScan)."""
    timeZoneId: Dyn[str] | None = None
    """The time zone of a date-time without an offset (the machine's by default)."""
    onBadLines: Dyn[OnBadLines] = "ERROR"
    """A row that does not fit the schema: ERROR fails the task, WARN logs and skips it, SKIP skips it."""

    def converter(self) -> Converter:
        return Converter(
            true_values=as_str_list(self.trueValues, "trueValues"),
            false_values=as_str_list(self.falseValues, "falseValues"),
            null_values=as_str_list(self.nullValues, "nullValues"),
            date_format=self.dateFormat,
            time_format=self.timeFormat,
            datetime_format=self.datetimeFormat,
            decimal_separator=single_char(self.decimalSeparator, "decimalSeparator"),
            strict=as_bool(self.strictSchema, "strictSchema"),
            infer_all=as_bool(self.inferAllFields, "inferAllFields"),
            zone=zone_of(self.timeZoneId),
        )

    def avro_schema(self, source: Path) -> dict[str, Any]:
        """The schema given (JSON text or a map), or the one inferred from the file's first rows."""
        if self.schema_ is None or self.schema_ == "":
            scan = (
                None
                if as_bool(self.inferAllFields, "inferAllFields")
                else as_int(self.numberOfRowsToScan, "numberOfRowsToScan")
            )
            if scan is not None and scan < 1:
                raise TaskFailed("numberOfRowsToScan must be at least 1")
            return infer_schema(list(islice(read_file(source, source.name), scan)))
        schema: Any = self.schema_
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise TaskFailed(f"schema is not JSON: {exc}") from None
        if not isinstance(schema, dict) or schema.get("type") not in ("record", "error"):
            raise TaskFailed('schema must be an Avro record schema: {"type": "record", "name": …, "fields": [...]}')
        return schema

    def records(
        self, ctx: RunContext, source: Path, schema: dict[str, Any], converter: Converter
    ) -> Iterator[dict[str, Any]]:
        """The file's rows as records; a bad row fails the task (with its number), or is logged and skipped."""
        policy = on_bad_lines(self.onBadLines)
        converter.register(schema)
        for number, row in enumerate(read_file(source, source.name), 1):
            try:
                yield converter.record(schema, row)
            except CellError as exc:
                bad_line(
                    ctx,
                    policy,
                    f"row {number} of {source.name} does not fit the schema: {exc.message}. Fix the data or the "
                    "schema (a union with null makes a field nullable), or set onBadLines to WARN or SKIP to leave "
                    "such rows out",
                )


class IonToAvro(AvroConverting):
    """Convert an Ion file to an Avro data file."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.avro.IonToAvro"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.serdes.avro.AvroWriter",)
    output_suffix: ClassVar[str] = ".avro"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fastavro = library("fastavro", self)
        source = self.source(ctx)
        schema = self.avro_schema(source)
        try:
            parsed = fastavro.parse_schema(schema)
        except Exception as exc:  # fastavro raises SchemaParseException, ValueError, KeyError, TypeError
            raise TaskFailed(f"schema is not a valid Avro schema: {exc}") from None
        counted = _Counted(self.records(ctx, source, schema, self.converter()))
        local = self.scratch(ctx)
        try:
            with local.open("wb") as out:
                fastavro.writer(out, parsed, counted, codec="null", validator=True)
        except (ValueError, TypeError, OverflowError) as exc:
            local.unlink(missing_ok=True)
            raise TaskFailed(f"row {counted.count} of {source.name} cannot be written as Avro: {exc}") from None
        return self.store(ctx, local, counted.count)


class _Counted:
    """An iterator of records that counts what it gave."""

    def __init__(self, records: Iterator[dict[str, Any]]) -> None:
        self.records = records
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for record in self.records:
            self.count += 1
            yield record


def ion_value(value: Any) -> Any:
    """A value read from Avro or Parquet as an Ion row holds it (UUIDs as text)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): ion_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [ion_value(v) for v in value]
    return value


class AvroToIon(SerdesTask):
    """Convert an Avro data file to Ion (one map per record)."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.avro.AvroToIon"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.serdes.avro.AvroReader",)

    onBadLines: Dyn[OnBadLines] = "ERROR"
    """A record that cannot be read: ERROR fails the task, WARN logs and skips the rest, SKIP skips the rest."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fastavro = library("fastavro", self)
        source = self.source(ctx)
        policy = on_bad_lines(self.onBadLines)
        local = self.scratch(ctx)
        with source.open("rb") as handle, local.open("w", encoding="utf-8") as out:
            try:
                reader = fastavro.reader(handle)
            except Exception as exc:  # fastavro raises ValueError, SchemaParseException, EOFError
                local.unlink(missing_ok=True)
                raise TaskFailed(f"{source.name} is not an Avro data file ({exc or type(exc).__name__})") from None
            size = write_rows(out, _read(ctx, reader, policy, source.name))
        return self.store(ctx, local, size)


def _read(ctx: RunContext, reader: Any, policy: str, name: str) -> Iterator[Any]:
    number = 0
    try:
        for record in reader:
            number += 1
            yield ion_value(record)
    except (ValueError, EOFError, OSError, KeyError, IndexError) as exc:
        bad_line(ctx, policy, f"record {number + 1} of {name} cannot be read: {exc or type(exc).__name__}")
