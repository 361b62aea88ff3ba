"""Rows to Avro records (Kestra's `AvroConverter`) and a schema inferred from rows (Kestra's `InferAvroSchema`).

IonToAvro and IonToParquet share both. A row is a map (fields by name or alias) or a list (fields by position).
Text becomes the schema's type: numbers (`decimalSeparator`), booleans (`trueValues`, `falseValues`), nulls
(`nullValues`), dates, times and date-times read with the task's Java patterns (`dateFormat`, `timeFormat`,
`datetimeFormat`); a date-time without an offset is in `timeZoneId`. A union takes the first of its branches the
value converts to. A value that fits no branch makes the row bad (`onBadLines`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from plugins.serdes.common import java_double, text_of
from plugins.serdes.patterns import parse_date, parse_datetime, parse_time
from runner.api import TaskFailed

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)
NAMESPACE = "io.kestra.plugin.serdes.avro"


class CellError(TaskFailed):
    """One value does not convert to its field's type (the row it is in is bad)."""


@dataclass
class Converter:
    """The conversion options of IonToAvro / IonToParquet, rendered."""

    true_values: list[str]
    false_values: list[str]
    null_values: list[str]
    date_format: str
    time_format: str
    datetime_format: str
    decimal_separator: str
    strict: bool
    infer_all: bool
    zone: tzinfo
    names: dict[str, Any] = field(default_factory=dict)
    """Named types (records, enums, fixed) by full and short name, for references."""

    def register(self, schema: Any, namespace: str | None = None) -> None:
        """Note every named type of `schema`, so a field typed by a name resolves."""
        if isinstance(schema, list):
            for branch in schema:
                self.register(branch, namespace)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if kind in ("record", "error", "enum", "fixed") and "name" in schema:
                space = schema.get("namespace", namespace)
                name = str(schema["name"])
                full = name if "." in name or not space else f"{space}.{name}"
                self.names[full] = schema
                self.names[name.rsplit(".", 1)[-1]] = schema
                namespace = space
            for item in schema.get("fields", []) or []:
                self.register(item.get("type"), namespace)
            for key in ("items", "values"):
                if key in schema:
                    self.register(schema[key], namespace)
            if isinstance(kind, dict | list):
                self.register(kind, namespace)

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema in self.names:
            return self.names[schema]
        if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list) and "logicalType" not in schema:
            return self.resolve(schema["type"])
        return schema

    def record(self, schema: dict[str, Any], row: Any) -> dict[str, Any]:
        """A row (map or list) as a record of `schema`; CellError naming the field that does not convert."""
        fields = schema.get("fields", []) or []
        if isinstance(row, list):
            if len(fields) == 1 and _kind(self.resolve(fields[0]["type"])) == "array":
                row = {fields[0]["name"]: row}
            else:
                if self.strict and len(row) > len(fields):
                    raise CellError(f"the row has {len(row)} values, more than the schema's {len(fields)} fields")
                row = {item["name"]: row[i] if i < len(row) else None for i, item in enumerate(fields)}
        if not isinstance(row, dict):
            raise CellError(f"a row must be a map or a list to become a record, not {type(row).__name__}")
        out: dict[str, Any] = {}
        for item in fields:
            name = item["name"]
            value = row.get(name)
            if value is None:
                value = next((row[a] for a in item.get("aliases", []) or [] if row.get(a) is not None), None)
            try:
                out[name] = self.value(item["type"], value)
            except CellError as exc:
                raise CellError(f"field {name!r}: {exc.message}") from None
        if self.strict and len(row) > len(fields):
            extra = sorted(set(row) - {item["name"] for item in fields})
            raise CellError(
                f"the row holds fields the schema does not declare ({', '.join(extra)}); strictSchema is on"
            )
        return out

    def value(self, schema: Any, data: Any) -> Any:
        schema = self.resolve(schema)
        if self.infer_all and isinstance(data, str):
            if _among(data, self.null_values):
                data = None
            elif _among(data, self.true_values):
                data = True
            elif _among(data, self.false_values):
                data = False
        try:
            return self._value(schema, data)
        except CellError:
            raise
        except (ValueError, TypeError, ArithmeticError, InvalidOperation, AttributeError) as exc:
            raise CellError(f"{_show(data)} is not {_describe(schema)} ({exc or type(exc).__name__})") from None

    def _value(self, schema: Any, data: Any) -> Any:
        if isinstance(schema, list):
            return self._union(schema, data)
        kind = _kind(schema)
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if logical is not None and (handler := self._logical(logical)) is not None:
            return handler(schema, data)
        if kind in ("record", "error"):
            if not isinstance(data, dict):
                raise CellError(f"{_show(data)} is not a map, as the record {schema.get('name')!r} needs")
            return self.record(schema, data)
        if kind == "array":
            if not isinstance(data, list):
                raise CellError(f"{_show(data)} is not a list")
            return [self.value(schema["items"], item) for item in data]
        if kind == "map":
            if not isinstance(data, dict):
                raise CellError(f"{_show(data)} is not a map")
            return {str(key): self.value(schema["values"], item) for key, item in data.items()}
        if kind == "enum":
            text = self.text(data)
            if text not in schema.get("symbols", []):
                raise CellError(f"{text!r} is none of the enum's symbols {schema.get('symbols')}")
            return text
        if kind == "fixed":
            raw = self._bytes(data)
            if len(raw) != schema.get("size"):
                raise CellError(f"{len(raw)} bytes given, the fixed type holds {schema.get('size')}")
            return raw
        primitive = _PRIMITIVES.get(kind or "")
        if primitive is None:
            raise CellError(f"the schema type {kind!r} is not an Avro type")
        return primitive(self, data)

    def _union(self, branches: list[Any], data: Any) -> Any:
        reasons = []
        for branch in branches:
            try:
                return self.value(branch, data)
            except CellError as exc:
                reasons.append(exc.message)
        raise CellError(f"{_show(data)} fits none of the union's types {json.dumps(branches)}")

    def _logical(self, name: str) -> Callable[[Any, Any], Any] | None:
        return {
            "decimal": self._decimal,
            "uuid": lambda _s, d: str(d if isinstance(d, uuid.UUID) else uuid.UUID(str(d))),
            "date": lambda _s, d: self.date(d),
            "time-millis": lambda _s, d: self.time(d),
            "time-micros": lambda _s, d: self.time(d),
            "timestamp-millis": lambda _s, d: self.timestamp(d, 1000),
            "timestamp-micros": lambda _s, d: self.timestamp(d, 1_000_000),
            "local-timestamp-millis": lambda _s, d: self.local_timestamp(d, 1000),
            "local-timestamp-micros": lambda _s, d: self.local_timestamp(d, 1_000_000),
        }.get(name)

    def _decimal(self, schema: dict[str, Any], data: Any) -> Decimal:
        scale = int(schema.get("scale", 0))
        if isinstance(data, str):
            number = Decimal(self.number_text(data))
        elif isinstance(data, bool) or data is None:
            raise CellError(f"{_show(data)} is not a decimal")
        else:
            number = Decimal(str(data)) if isinstance(data, float) else Decimal(data)
        return number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)

    def number_text(self, text: str) -> str:
        return text if self.decimal_separator == "." else text.replace(self.decimal_separator, ".", 1)

    def date(self, data: Any) -> date:
        if isinstance(data, str):
            return parse_date(data, self.date_format)
        if isinstance(data, datetime):
            return (data.astimezone(self.zone) if data.tzinfo else data).date()
        if isinstance(data, date):
            return data
        raise CellError(f"{_show(data)} is not a date")

    def time(self, data: Any) -> time:
        if isinstance(data, str):
            return parse_time(data, self.time_format).replace(tzinfo=None)
        if isinstance(data, time):
            return data.replace(tzinfo=None)
        raise CellError(f"{_show(data)} is not a time")

    def timestamp(self, data: Any, per_second: int) -> datetime:
        """An instant (aware, UTC): epoch numbers in the unit, text with `datetimeFormat` (in `timeZoneId`
        when it has no offset)."""
        if isinstance(data, str):
            if data.strip().lstrip("-").isdigit():
                return datetime.fromtimestamp(int(data) / per_second, UTC)
            data = parse_datetime(data, self.datetime_format)
        if isinstance(data, int) and not isinstance(data, bool):
            return datetime.fromtimestamp(data / per_second, UTC)
        if isinstance(data, datetime):
            return (data if data.tzinfo else data.replace(tzinfo=self.zone)).astimezone(UTC)
        raise CellError(f"{_show(data)} is not a date-time")

    def local_timestamp(self, data: Any, per_second: int) -> datetime:
        return self.timestamp(data, per_second).astimezone(self.zone).replace(tzinfo=None)

    def text(self, data: Any) -> str:
        """Java's String.valueOf: a null is the text "null", as in Kestra."""
        if isinstance(data, datetime | date | time):
            return data.isoformat()
        shown = text_of(data)
        return "null" if shown is None else shown

    def _bytes(self, data: Any) -> bytes:
        return data if isinstance(data, bytes) else self.text(data).encode("utf-8")


def _kind(schema: Any) -> str | None:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        kind = schema.get("type")
        return kind if isinstance(kind, str) else None
    return "union" if isinstance(schema, list) else None


def _among(text: str, values: list[str]) -> bool:
    lowered = text.lower()
    return any(lowered == value.lower() for value in values)


def _null(conv: Converter, data: Any) -> None:
    if data is None or (isinstance(data, str) and _among(data, conv.null_values)):
        return None
    raise CellError(f"{_show(data)} is not null (nor one of nullValues)")


def _integer(low_high: tuple[int, int], what: str) -> Callable[[Converter, Any], int]:
    def convert(conv: Converter, data: Any) -> int:
        if isinstance(data, bool) or data is None:
            raise CellError(f"{_show(data)} is not {what}")
        if isinstance(data, str):
            number = int(data.strip(), 10) if data.strip().lstrip("+-").isdigit() else None
            if number is None:
                raise CellError(f"{_show(data)} is not {what}")
        elif isinstance(data, int):
            number = data
        elif isinstance(data, Decimal) and data == data.to_integral_value() and what == "a long":
            number = int(data)
        else:
            raise CellError(f"{_show(data)} is not {what}")
        if not low_high[0] <= number <= low_high[1]:
            raise CellError(f"{number} is out of the range of {what}")
        return number

    return convert


def _floating(conv: Converter, data: Any) -> float:
    if isinstance(data, str):
        return float(conv.number_text(data.strip()))
    if isinstance(data, bool) or data is None:
        raise CellError(f"{_show(data)} is not a number")
    return float(data)


def _boolean(conv: Converter, data: Any) -> bool:
    if isinstance(data, bool):
        return data
    if isinstance(data, str) and _among(data, conv.true_values):
        return True
    if isinstance(data, str) and _among(data, conv.false_values):
        return False
    if isinstance(data, int) and data in (0, 1):
        return data == 1
    raise CellError(f"{_show(data)} is not a boolean (nor one of trueValues / falseValues)")


_PRIMITIVES: dict[str, Callable[[Converter, Any], Any]] = {
    "null": _null,
    "int": _integer(INT_RANGE, "an int"),
    "long": _integer(LONG_RANGE, "a long"),
    "float": _floating,
    "double": _floating,
    "boolean": _boolean,
    "string": lambda conv, data: conv.text(data),
    "bytes": lambda conv, data: conv._bytes(data),
}


def _show(data: Any) -> str:
    if isinstance(data, float):
        return java_double(data)
    text = repr(data) if not isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return text if len(text) <= 80 else text[:80] + "…"


def _describe(schema: Any) -> str:
    if isinstance(schema, dict) and "logicalType" in schema:
        return f"a {schema['logicalType']}"
    kind = _kind(schema)
    return f"a {kind}" if kind else json.dumps(schema)


# --- schema inference ---------------------------------------------------------------------------------------


def infer_schema(rows: list[Any]) -> dict[str, Any]:
    """An Avro record schema for `rows` (Kestra's inference: every field nullable, text as string, integers as
    int, floats as double, dates, times and date-times as their logical types); TaskFailed when there is no row."""
    if not rows:
        raise TaskFailed(
            "cannot infer an Avro schema: the file holds no row. Give the schema property, or a file with rows"
        )
    merged: Any = None
    for row in rows:
        merged = _merge(merged, _infer("root", row, root=True))
    assert isinstance(merged, dict)
    return merged


def _nullable(schema: Any) -> list[Any]:
    return ["null", schema]


def _infer(name: str, value: Any, root: bool = False) -> Any:
    if isinstance(value, dict):
        record = {
            "type": "record",
            "name": name,
            "namespace": NAMESPACE,
            "fields": [{"name": str(k), "type": _infer(str(k), v)} for k, v in value.items()],
        }
        return record if root else [record, "null"]
    if isinstance(value, list):
        items: Any = None
        for item in value:
            items = _merge(items, _infer(f"{name}_items", item))
        array = {"type": "array", "items": items if items is not None else "string"}
        if root:
            return {
                "type": "record",
                "name": name,
                "namespace": NAMESPACE,
                "fields": [{"name": "value", "type": array}],
            }
        return [array, "null"]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return _nullable("boolean")
    if isinstance(value, int):
        return _nullable("int" if INT_RANGE[0] <= value <= INT_RANGE[1] else "long")
    if isinstance(value, float):
        return _nullable("double")
    if isinstance(value, bytes):
        return _nullable("bytes")
    if isinstance(value, datetime):
        return _nullable({"type": "long", "logicalType": "local-timestamp-millis"})
    if isinstance(value, date):
        return _nullable({"type": "int", "logicalType": "date"})
    if isinstance(value, time):
        return _nullable({"type": "int", "logicalType": "time-millis"})
    return _nullable("string")


def _merge(a: Any, b: Any) -> Any:
    """The most precise schema that holds both (two records merge their fields; other types form a union)."""
    if a is None:
        return b
    if a == b:
        return a
    branches: list[Any] = []
    for schema in (a if isinstance(a, list) else [a]) + (b if isinstance(b, list) else [b]):
        if isinstance(schema, dict) and schema.get("type") == "record":
            twin = next((i for i, s in enumerate(branches) if isinstance(s, dict) and s.get("type") == "record"), None)
            if twin is not None:
                branches[twin] = _merge_records(branches[twin], schema)
                continue
        if isinstance(schema, dict) and schema.get("type") == "array":
            twin = next((i for i, s in enumerate(branches) if isinstance(s, dict) and s.get("type") == "array"), None)
            if twin is not None:
                branches[twin] = {"type": "array", "items": _merge(branches[twin]["items"], schema["items"])}
                continue
        if schema not in branches:
            branches.append(schema)
    if {"int", "long"} <= set(b for b in branches if isinstance(b, str)):
        branches.remove("int")
    if len(branches) == 1:
        return branches[0]
    return branches


def _merge_records(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    fields = {item["name"]: item["type"] for item in a["fields"]}
    for item in b["fields"]:
        fields[item["name"]] = _merge(fields.get(item["name"]), item["type"])
    for name, schema in fields.items():
        if isinstance(schema, list) and "null" not in schema:
            fields[name] = ["null", *schema]
        elif (
            not isinstance(schema, list)
            and schema != "null"
            and (name not in {i["name"] for i in a["fields"]} or name not in {i["name"] for i in b["fields"]})
        ):
            fields[name] = ["null", schema]
    return {**a, "fields": [{"name": name, "type": schema} for name, schema in fields.items()]}
