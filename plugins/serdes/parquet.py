"""Parquet to and from Ion (pyarrow, in the `serdes` extra): `IonToParquet` (alias ParquetWriter) and `ParquetToIon`
(alias ParquetReader).

IonToParquet takes the rows through an Avro schema as IonToAvro does (Kestra writes Parquet with parquet-avro), then
maps it to Parquet columns: int -> INT32, long -> INT64, float, double, boolean, string, bytes, fixed, enum (as
text), the date, time, timestamp, local-timestamp, decimal and uuid logical types, records, arrays and maps. A union
of null and one type is a nullable column; a union of several other types has no Parquet column and is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any, ClassVar, Literal

from plugins.core._props import as_int
from plugins.ion import write_rows
from plugins.serdes.avro import AvroConverting, ion_value
from plugins.serdes.avro_schema import Converter
from plugins.serdes.common import SerdesTask, library
from runner.api import RunContext, TaskFailed
from runner.types import Dyn

CODECS = {"UNCOMPRESSED": "none", "SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd"}
BATCH_ROWS = 10_000


class IonToParquet(AvroConverting):
    """Convert an Ion file to a Parquet file, typed by an Avro schema (given, or inferred from the rows)."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.parquet.IonToParquet"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.serdes.parquet.ParquetWriter",)
    output_suffix: ClassVar[str] = ".parquet"

    compressionCodec: Dyn[Literal["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"]] = "GZIP"
    """How the column pages are compressed."""
    parquetVersion: Dyn[Literal["V1", "V2"]] = "V2"
    """The Parquet format version (V2: data pages v2)."""
    rowGroupSize: Dyn[int] = 128 * 1024 * 1024
    """Target size of a row group, in bytes (of the data in memory)."""
    pageSize: Dyn[int] = 1024 * 1024
    """Target size of a data page, in bytes."""
    dictionaryPageSize: Dyn[int] = 1024 * 1024
    """Largest dictionary page, in bytes."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        pa = library("pyarrow", self)
        pq = library("pyarrow.parquet", self, "pyarrow")
        source = self.source(ctx)
        schema = self.avro_schema(source)
        converter = self.converter()
        converter.register(schema)
        arrow = pa.schema([pa.field(f["name"], *_arrow(pa, converter, f["type"], f["name"])) for f in schema["fields"]])
        codec = str(self.compressionCodec).upper()
        if codec not in CODECS:
            raise TaskFailed(f"compressionCodec must be one of {', '.join(CODECS)}, not {self.compressionCodec!r}")
        v2 = str(self.parquetVersion).upper() == "V2"
        group_bytes = max(1, as_int(self.rowGroupSize, "rowGroupSize"))
        local = self.scratch(ctx)
        count = 0
        records = self.records(ctx, source, schema, converter)
        try:
            with pq.ParquetWriter(
                str(local),
                arrow,
                compression=CODECS[codec],
                version="2.6" if v2 else "1.0",
                data_page_version="2.0" if v2 else "1.0",
                data_page_size=as_int(self.pageSize, "pageSize"),
                dictionary_pagesize_limit=as_int(self.dictionaryPageSize, "dictionaryPageSize"),
                use_dictionary=True,
            ) as writer:
                pending: list[Any] = []
                pending_bytes = 0
                while batch := list(islice(records, BATCH_ROWS)):
                    table = pa.Table.from_pylist(batch, schema=arrow)
                    count += len(batch)
                    pending.append(table)
                    pending_bytes += table.nbytes
                    if pending_bytes >= group_bytes:
                        _write_group(pa, writer, pending)
                        pending, pending_bytes = [], 0
                if pending:
                    _write_group(pa, writer, pending)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            local.unlink(missing_ok=True)
            raise TaskFailed(f"the rows of {source.name} cannot be written as Parquet: {exc}") from None
        return self.store(ctx, local, count)


def _write_group(pa: Any, writer: Any, tables: list[Any]) -> None:
    """The rows buffered so far as one row group."""
    table = pa.concat_tables(tables)
    writer.write_table(table, row_group_size=max(1, table.num_rows))


def _arrow(pa: Any, converter: Converter, schema: Any, name: str) -> tuple[Any, bool]:
    """(Arrow type, nullable) of an Avro field type."""
    schema = converter.resolve(schema)
    if isinstance(schema, list):
        others = [branch for branch in schema if branch != "null"]
        if len(others) != 1:
            raise TaskFailed(
                f"field {name!r} is a union of {len(others)} types ({others}): Parquet has no such column. Give a "
                "schema where each field is one type, or a union of null and one type"
            )
        return _arrow(pa, converter, others[0], name)[0], True
    kind = schema if isinstance(schema, str) else schema.get("type")
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical is not None:
        found = _logical(pa, schema, logical)
        if found is not None:
            return found, False
    simple = {
        "null": pa.null(),
        "boolean": pa.bool_(),
        "int": pa.int32(),
        "long": pa.int64(),
        "float": pa.float32(),
        "double": pa.float64(),
        "string": pa.string(),
        "bytes": pa.binary(),
        "enum": pa.string(),
    }
    if kind in simple:
        return simple[kind], kind == "null"
    if kind == "fixed":
        return pa.binary(int(schema["size"])), False
    if kind in ("record", "error"):
        children = [
            pa.field(f["name"], *_arrow(pa, converter, f["type"], f"{name}.{f['name']}")) for f in schema["fields"]
        ]
        return pa.struct(children), False
    if kind == "array":
        item, nullable = _arrow(pa, converter, schema["items"], f"{name}[]")
        return pa.list_(pa.field("element", item, nullable=nullable)), False
    if kind == "map":
        value, _ = _arrow(pa, converter, schema["values"], f"{name}{{}}")
        return pa.map_(pa.string(), value), False
    raise TaskFailed(f"field {name!r} has the type {kind!r}, which is no Avro type")


def _logical(pa: Any, schema: dict[str, Any], logical: str) -> Any:
    return {
        "date": pa.date32(),
        "time-millis": pa.time32("ms"),
        "time-micros": pa.time64("us"),
        "timestamp-millis": pa.timestamp("ms", tz="UTC"),
        "timestamp-micros": pa.timestamp("us", tz="UTC"),
        "local-timestamp-millis": pa.timestamp("ms"),
        "local-timestamp-micros": pa.timestamp("us"),
        "uuid": pa.string(),
        "decimal": pa.decimal128(int(schema.get("precision", 38)), int(schema.get("scale", 0)))
        if int(schema.get("precision", 38)) <= 38
        else pa.decimal256(int(schema["precision"]), int(schema.get("scale", 0))),
    }.get(logical)


class ParquetToIon(SerdesTask):
    """Convert a Parquet file to Ion (one map per row)."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.parquet.ParquetToIon"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.serdes.parquet.ParquetReader",)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        pa = library("pyarrow", self)
        pq = library("pyarrow.parquet", self, "pyarrow")
        source = self.source(ctx)
        try:
            parquet = pq.ParquetFile(str(source))
        except (pa.ArrowInvalid, OSError) as exc:
            raise TaskFailed(f"{source.name} is not a Parquet file ({exc})") from None
        local = self.scratch(ctx)
        with local.open("w", encoding="utf-8") as out:
            size = write_rows(out, _rows(parquet))
        return self.store(ctx, local, size)


def _rows(parquet: Any) -> Iterator[Any]:
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        for row in batch.to_pylist():
            yield {key: _from_arrow(value) for key, value in row.items()}


def _from_arrow(value: Any) -> Any:
    """Arrow's maps come back as lists of (key, value) pairs; everything else is a plain value already."""
    if isinstance(value, list) and value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
        return {str(k): _from_arrow(v) for k, v in value}
    if isinstance(value, list):
        return [_from_arrow(item) for item in value]
    if isinstance(value, dict):
        return {key: _from_arrow(item) for key, item in value.items()}
    return ion_value(value)
