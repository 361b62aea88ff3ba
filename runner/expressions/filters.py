"""Kestra/Pebble filters, tests and operator helpers for the renderer (pure functions of their arguments).

Filters that need no runtime (storage, key-value store, secrets) live here; `runner.expressions.functions` holds
the functions. Every filter except `default` refuses an undefined value (the renderer wraps them).

One module over 500 lines on purpose: it is one catalogue, the `FILTERS` and `TESTS` tables with the small pure
functions they name; splitting it would scatter the one place that says which filters exist.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import yaml
from jinja2 import Undefined

from runner.errors import ExpressionError
from runner.expressions import dates, limits
from runner.expressions.jq import jq

MAX_ITEMS = limits.MAX_ITEMS
"""The longest list a range or a loop may produce."""


class FilterError(ExpressionError):
    """A filter, test or function was given a value it cannot handle."""


# ---------------------------------------------------------------------------------------------- conversions


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return dates.iso_instant(value) if value.utcoffset() == UTC.utcoffset(None) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Compact JSON, as Kestra's toJson writes it (refused past MAX_OUTPUT characters)."""
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        limits.check_size("toJson", value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=json_default)


def to_text(value: Any) -> str:
    """How a value prints in a template: null is empty, booleans are lower-case, maps and lists are JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return json_default(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return to_json(value)
    return str(value)


def from_json(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str | bytes):
        return value
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise FilterError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise limits.refuse("fromJson", f"the data is nested deeper than {limits.MAX_DATA_DEPTH}") from None
    return limits.check_data("fromJson", parsed)


def from_yaml(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return limits.load_yaml("fromYaml", value)
    except yaml.YAMLError as exc:
        raise FilterError(f"invalid YAML: {exc}") from None


def to_number(value: Any, type: str | None = None) -> int | float:
    """`number(type)` filter: a number parsed from text (int when it is integral, unless type is FLOAT/DOUBLE)."""
    if isinstance(value, bool):
        raise FilterError(f"cannot parse {value!r} as a number")
    if isinstance(value, int | float):
        number: int | float = value
    else:
        text = str(value).strip()
        try:
            number = int(text, 0) if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|\d+)", text) else float(text)
        except ValueError:
            raise FilterError(f"cannot parse {text!r} as a number") from None
    upper = (type or "").upper()
    if upper in ("FLOAT", "DOUBLE", "BIGDECIMAL"):
        return float(number)
    if upper in ("INT", "INTEGER", "LONG", "BIGINTEGER"):
        return int(number)
    return number


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return list(value)
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def _bounded_list(what: str, value: Any) -> list[Any]:
    """`as_list`, refused past MAX_LOOP_ITEMS items (a 10 MB text is not turned into ten million one-letter
    strings)."""
    if isinstance(value, str | list | tuple | Mapping) and len(value) > limits.MAX_LOOP_ITEMS:
        raise limits.refuse(what, f"{len(value)} items is over the limit of {limits.MAX_LOOP_ITEMS}")
    return as_list(value)


# ---------------------------------------------------------------------------------------------- operators


def op_bool(value: Any) -> bool:
    return bool(value)


def op_div(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
        if right == 0:
            raise FilterError("division by zero")
        return int(left / right) if (left < 0) != (right < 0) else left // right
    try:
        return left / right
    except ZeroDivisionError:
        raise FilterError("division by zero") from None


def op_concat(left: Any, right: Any) -> str:
    left_text, right_text = to_text(left), to_text(right)
    limits.check_text("~", len(left_text) + len(right_text))
    return left_text + right_text


def op_contains(container: Any, item: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, str):
        return to_text(item) in container
    if isinstance(item, list | tuple) and not isinstance(container, Mapping):
        return all(x in container for x in item)
    return item in container


def op_range(start: Any, end: Any) -> list[int]:
    return range_list(start, end)


def range_list(start: Any, end: Any = None, increment: Any = 1) -> list[int]:
    """Pebble's inclusive `range(start, end, increment)` (`1..3` is [1, 2, 3]); capped at MAX_ITEMS."""
    lo, hi, by = int(start), int(end), int(increment)
    if by == 0:
        raise FilterError("range step must not be 0")
    count = (hi - lo) // by + 1
    if count > MAX_ITEMS:
        raise FilterError(f"range of {count} items is longer than {MAX_ITEMS}")
    limits.spend(max(count, 0), "range")
    return list(range(lo, hi + (1 if by > 0 else -1), by))


def is_present(value: Any) -> bool:
    return value is not None and not isinstance(value, Undefined)


def is_defined(value: Any) -> bool:
    return not isinstance(value, Undefined)


def null_coalesce(value: Any, fallback: Any) -> Any:
    return value if is_present(value) else fallback


def undefined_coalesce(value: Any, fallback: Any) -> Any:
    return value if is_defined(value) else fallback


def loop_items(value: Any) -> list[Any]:
    """What `{% for x in value %}` walks: a map gives entries with `key` and `value` (Pebble's Map.Entry)."""
    if isinstance(value, Mapping):
        items: list[Any] = [{"key": k, "value": v} for k, v in value.items()]
    elif value is None:
        items = []
    elif isinstance(value, str):
        items = [value]
    else:
        items = list(value)
    if len(items) > MAX_ITEMS:
        raise FilterError(f"a loop over {len(items)} items is longer than {MAX_ITEMS}")
    return items


def loop_pairs(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, Mapping):
        return list(value.items())
    return list(enumerate(loop_items(value)))


# ---------------------------------------------------------------------------------------------- strings


def _slugify(value: Any) -> str:
    text = unicodedata.normalize("NFKD", to_text(value)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _replace(value: Any, replace_pairs: Any, *replacement: Any, regexp: Any = False) -> str:
    """Kestra's `replace(replace_pairs, regexp)`: a map of search -> replacement; `replace('a', 'b')` works too."""
    text = to_text(value)
    if replacement and isinstance(replacement[0], bool) and isinstance(replace_pairs, Mapping):
        regexp, replacement = replacement[0], replacement[1:]  # Kestra's positional regexp: replace({…}, true)
    if len(replacement) > 1:
        raise FilterError("replace takes a map of replacements (and regexp), or a search text and its replacement")
    search = replace_pairs
    pairs = search.items() if isinstance(search, Mapping) else [(search, replacement[0] if replacement else None)]
    for old, new in pairs:
        if regexp:
            text = limits.regex_sub("replace", str(old), to_text(new), text)
            continue
        search, insert = to_text(old), to_text(new)
        count = len(text) + 1 if search == "" else text.count(search)
        limits.check_text("replace", len(text) + count * max(0, len(insert) - len(search)))
        text = text.replace(search, insert)
    return text


def _split(value: Any, delimiter: str, limit: int | None = None) -> list[str]:
    """Split on a literal delimiter; like Java, trailing empty strings are dropped when there is no limit."""
    text = to_text(value)
    if limit is not None and int(limit) > 0:
        return text.split(to_text(delimiter), int(limit) - 1)
    parts = text.split(to_text(delimiter))
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _substring(before: bool, last: bool) -> Callable[[Any, Any], str]:
    def run(value: Any, separator: Any) -> str:
        text, sep = to_text(value), to_text(separator)
        index = text.rfind(sep) if last else text.find(sep)
        if index == -1:
            return text if before else ""
        return text[:index] if before else text[index + len(sep) :]

    return run


def _abbreviate(value: Any, length: int) -> str:
    text = to_text(value)
    if len(text) <= length:
        return text
    if length < 4:
        raise FilterError("abbreviate length must be at least 4")
    return text[: length - 3] + "..."


def _pad(what: str, value: Any, amount: Any, prefix: Any) -> tuple[str, list[str]]:
    width = limits.check_count(what, "amount", int(amount), limits.MAX_WIDTH)
    pad = to_text(prefix)
    limits.check_count(what, "padding width", len(pad) * max(width, 0), limits.MAX_WIDTH)
    pad *= max(width, 0)
    lines = to_text(value).split("\n")
    limits.check_text(what, sum(len(line) + 1 for line in lines) + len(pad) * len(lines))
    return pad, lines


def _indent(value: Any, amount: int, prefix: str = " ") -> str:
    pad, lines = _pad("indent", value, amount, prefix)
    return "\n".join([lines[0], *[(pad + line) if line else line for line in lines[1:]]])


def _nindent(value: Any, amount: int, prefix: str = " ") -> str:
    pad, lines = _pad("nindent", value, amount, prefix)
    return "\n" + "\n".join((pad + line) if line else line for line in lines)


def _escape_char(value: Any, type: str = "double") -> str:
    text = to_text(value)
    if type == "single":
        return text.replace("\\", "\\\\").replace("'", "\\'")
    if type == "shell":
        return text.replace("'", "'\\''")
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _title(value: Any) -> str:
    return re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), to_text(value))


def _capitalize(value: Any) -> str:
    text = to_text(value)
    return text[:1].upper() + text[1:]


def _b64decode(value: Any) -> str:
    try:
        return base64.b64decode(to_text(value), validate=False).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise FilterError(f"invalid base64: {exc}") from None


def _digest(name: str) -> Callable[[Any], str]:
    return lambda value: hashlib.new(name, to_text(value).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------- collections


def _default(value: Any, default: Any = "", boolean: bool = False) -> Any:
    if isinstance(value, Undefined) or value is None or (boolean and not value):
        return default
    if isinstance(value, str | list | dict) and not value:
        return default
    return value


def _length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | Mapping | list | tuple | set):
        return len(value)
    return len(as_list(value))


def _join(value: Any, separator: str = "") -> str:
    items = _bounded_list("join", value)
    sep = to_text(separator)
    limits.check_text("join", len(sep) * len(items) + limits.text_size(items))
    return sep.join(to_text(x) for x in items)


def _first(value: Any) -> Any:
    items = as_list(value) if not isinstance(value, str) else value
    return items[0] if items else None


def _last(value: Any) -> Any:
    items = as_list(value) if not isinstance(value, str) else value
    return items[-1] if items else None


def _keys(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.keys())
    raise FilterError(f"keys needs a map, not {type(value).__name__}")


def _values(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    raise FilterError(f"values needs a map, not {type(value).__name__}")


def _flatten(value: Any) -> list[Any]:
    items = _bounded_list("flatten", value)
    total = sum(len(item) if isinstance(item, list | tuple) else 1 for item in items)
    limits.check_count("flatten", "result length", total, limits.MAX_LOOP_ITEMS)
    out: list[Any] = []
    for item in items:
        out.extend(item if isinstance(item, list | tuple) else [item])
    return out


def _chunk(value: Any, size: int) -> list[list[Any]]:
    items = as_list(value)
    size = int(size)
    if size <= 0:
        raise FilterError("chunk size must be positive")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _distinct(value: Any) -> list[Any]:
    out: list[Any] = []
    seen: set[Any] = set()
    for item in _bounded_list("distinct", value):
        try:
            key: Any = ("h", item) if not isinstance(item, float) or item == item else ("nan",)
            hash(key)
        except TypeError:
            key = ("j", to_json(item))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _sort(value: Any, reverse: bool = False) -> list[Any]:
    try:
        return sorted(as_list(value), reverse=reverse)
    except TypeError:
        raise FilterError("sort needs items of one comparable type") from None


def _reverse(value: Any) -> Any:
    if isinstance(value, str):
        return value[::-1]
    return as_list(value)[::-1]


def _slice(value: Any, fromIndex: int = 0, toIndex: int | None = None) -> Any:
    end = None if toIndex is None else int(toIndex)
    if isinstance(value, str):
        return value[int(fromIndex) : end]
    return as_list(value)[int(fromIndex) : end]


def _merge(value: Any, items: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(items, Mapping):
        return {**value, **items}
    left, right = _bounded_list("merge", value), _bounded_list("merge", items)
    limits.check_join("merge", left, right)
    return left + right


def _round(value: Any, precision: int = 0, method: str = "common") -> float | int:
    number = to_number(value)
    limits.check_count("round", "precision", int(precision), limits.MAX_PRECISION)
    limits.check_count("round", "precision", -int(precision), limits.MAX_PRECISION)
    factor = 10 ** int(precision)
    if method == "floor":
        result = math.floor(number * factor) / factor
    elif method == "ceil":
        result = math.ceil(number * factor) / factor
    else:
        scaled = abs(number) * factor
        result = math.copysign(math.floor(scaled + 0.5) / factor, number)
    return int(result) if int(precision) <= 0 else result


def _number_format(value: Any, format: str = "#,##0.###") -> str:
    decimals = len(format.split(".")[1]) if "." in format else 0
    limits.check_count("numberFormat", "decimals", decimals, limits.MAX_PRECISION)
    grouped = "," in format
    return f"{to_number(value):{',' if grouped else ''}.{decimals}f}"


def _class_name(value: Any) -> str:
    names = {str: "java.lang.String", bool: "java.lang.Boolean", int: "java.lang.Integer", float: "java.lang.Double"}
    if isinstance(value, Mapping):
        return "java.util.LinkedHashMap"
    if isinstance(value, list | tuple):
        return "java.util.ArrayList"
    if isinstance(value, datetime):
        return "java.time.ZonedDateTime"
    return names.get(type(value), type(value).__name__)


def _jq(value: Any, expression: str) -> list[Any]:
    return jq(json.loads(to_json(value)) if not isinstance(value, str) else value, expression)


def _jq_first(value: Any, expression: str) -> Any:
    results = _jq(value, expression)
    return results[0] if results else None


def _date(value: Any, format: str | None = None, timeZone: str | None = None, existingFormat: str | None = None,
          locale: str | None = None) -> str | None:  # fmt: skip
    """Kestra's `date(format, timeZone, existingFormat, locale)`: null stays null."""
    if value is None:
        return None
    return dates.format_date(value, format, timeZone, existingFormat)


def _date_add(value: Any, amount: Any, unit: str, format: str | None = None, timeZone: str | None = None,
              existingFormat: str | None = None, locale: str | None = None) -> str | None:  # fmt: skip
    """Kestra's `dateAdd(amount, unit, format, timeZone, existingFormat, locale)`: the date moved, formatted as
    the `date` filter formats it (`iso` unless `format`)."""
    if value is None:
        return None
    moved = dates.date_add(value, amount, unit, timeZone, existingFormat)
    return dates.format_date(moved, format, timeZone)


def _timestamp(unit: str) -> Callable[..., int | None]:
    def run(value: Any, timeZone: str | None = None, existingFormat: str | None = None) -> int | None:
        if value is None:
            return None
        return dates.timestamp(value, unit, timeZone, existingFormat)

    return run


def _to_yaml(what: str, value: Any) -> str:
    limits.check_size(what, value)
    return yaml.safe_dump(json.loads(to_json(value)), sort_keys=False, allow_unicode=True)


FILTERS: dict[str, Callable[..., Any]] = {
    "abbreviate": _abbreviate,
    "abs": lambda v: abs(to_number(v)),
    "base64decode": _b64decode,
    "base64encode": lambda v: base64.b64encode(to_text(v).encode("utf-8")).decode("ascii"),
    "b64decode": _b64decode,
    "b64encode": lambda v: base64.b64encode(to_text(v).encode("utf-8")).decode("ascii"),
    "capitalize": _capitalize,
    "chunk": _chunk,
    "className": _class_name,
    "date": _date,
    "dateAdd": _date_add,
    "default": _default,
    "distinct": _distinct,
    "endsWith": lambda v, value: to_text(v).endswith(to_text(value)),
    "escapeChar": _escape_char,
    "first": _first,
    "flatten": _flatten,
    "fromJson": from_json,
    "indent": _indent,
    "jq": _jq,
    "jqFirst": _jq_first,
    "join": _join,
    "json": to_json,
    "keys": _keys,
    "last": _last,
    "length": _length,
    "lower": lambda v: to_text(v).lower(),
    "md5": _digest("md5"),
    "merge": _merge,
    "nindent": _nindent,
    "number": to_number,
    "numberFormat": _number_format,
    "replace": _replace,
    "reverse": _reverse,
    "round": _round,
    "rsort": lambda v: _sort(v, reverse=True),
    "sha1": _digest("sha1"),
    "sha256": _digest("sha256"),
    "sha512": _digest("sha512"),
    "slice": _slice,
    "slugify": _slugify,
    "sort": _sort,
    "split": _split,
    "startsWith": lambda v, value: to_text(v).startswith(to_text(value)),
    "string": to_text,
    "substringAfter": _substring(before=False, last=False),
    "substringAfterLast": _substring(before=False, last=True),
    "substringBefore": _substring(before=True, last=False),
    "substringBeforeLast": _substring(before=True, last=True),
    "timestamp": _timestamp("seconds"),
    "timestampMicro": _timestamp("micros"),
    "timestampMilli": _timestamp("millis"),
    "timestampNano": _timestamp("nanos"),
    "title": _title,
    "toJson": to_json,
    "toYaml": lambda v: _to_yaml("toYaml", v),
    "trim": lambda v: to_text(v).strip(),
    "upper": lambda v: to_text(v).upper(),
    "urldecode": lambda v: urllib.parse.unquote_plus(to_text(v)),
    "urlencode": lambda v: urllib.parse.quote_plus(to_text(v)),
    "values": _values,
    "yaml": lambda v: _to_yaml("yaml", v),
}
FILTERS["dateFormat"] = FILTERS["date"]
FILTERS["numberformat"] = FILTERS["numberFormat"]  # Pebble's own name
FILTERS["timestampMillis"] = FILTERS["timestampMilli"]


def _is_empty(value: Any) -> bool:
    if value is None or isinstance(value, Undefined):
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, Mapping | list | tuple | set):
        return len(value) == 0
    return False


def _is_json(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


TESTS: dict[str, Callable[..., bool]] = {
    "defined": is_defined,
    "null": lambda v: v is None or isinstance(v, Undefined),
    "empty": _is_empty,
    "even": lambda v: int(v) % 2 == 0,
    "odd": lambda v: int(v) % 2 == 1,
    "iterable": lambda v: isinstance(v, list | tuple | set | Mapping),
    "map": lambda v: isinstance(v, Mapping),
    "json": _is_json,
    "startsWith": lambda v, s: isinstance(v, str) and v.startswith(to_text(s)),
    "endsWith": lambda v, s: isinstance(v, str) and v.endswith(to_text(s)),
}
UNDEFINED_SAFE_TESTS = frozenset({"defined", "null", "empty"})
