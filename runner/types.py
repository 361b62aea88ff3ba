"""Value types shared by the flow model and the task plugins.

Kestra's dynamic properties accept either a typed value or a `{{ expression }}` rendered at run time:
`Dyn[int]` says exactly that, so `concurrent: 4` and `concurrent: "{{ inputs.n }}"` both validate.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StringConstraints, WithJsonSchema

from runner.durations import format_duration, parse_duration

T = TypeVar("T")

EXPRESSION_PATTERN = r"\{\{|\{%"


def _is_expression(value: str) -> str:
    if "{{" not in value and "{%" not in value:
        raise ValueError("not an expression")
    return value


Expression = Annotated[
    str,
    AfterValidator(_is_expression),
    WithJsonSchema({"type": "string", "pattern": EXPRESSION_PATTERN, "description": "a {{ }} expression"}),
]
"""A string that holds a `{{ }}` or `{% %}` expression, accepted wherever a dynamic property is."""

Dyn = Annotated[T | Expression, "dynamic"]


def _to_duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "description": "ISO-8601 duration, e.g. PT30S, PT5M, P1D"}),
]

DynDuration = Duration | Expression

FLOW_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
TASK_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
INPUT_ID_PATTERN = r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"

PATTERN_HINTS = {
    FLOW_ID_PATTERN: "a flow id may hold only letters, digits, '.', '_' and '-', and starts with a letter or digit",
    NAMESPACE_PATTERN: (
        "a namespace may hold only lower-case letters, digits, '.', '_' and '-', and starts with a letter or digit"
    ),
    TASK_ID_PATTERN: "an id may hold only letters, digits, '_' and '-' (no dots), and starts with a letter or digit",
    INPUT_ID_PATTERN: "an id may hold only letters, digits, '.', '_' and '-', and starts with a letter or digit",
}
"""What each id pattern allows, in words: the validator says this instead of the regular expression."""

FlowId = Annotated[str, StringConstraints(pattern=FLOW_ID_PATTERN, min_length=1, max_length=100)]
Namespace = Annotated[str, StringConstraints(pattern=NAMESPACE_PATTERN, min_length=1, max_length=150)]
TaskId = Annotated[str, StringConstraints(pattern=TASK_ID_PATTERN, min_length=1, max_length=100)]
InputId = Annotated[str, StringConstraints(pattern=INPUT_ID_PATTERN, min_length=1, max_length=100)]

_SCALAR = (str, int, float, bool)


def _labels(value: Any) -> Any:
    """Kestra accepts labels as a map or as a list of {key, value}; both normalise to a map."""
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for i, item in enumerate(value):
            if not isinstance(item, dict) or set(item) != {"key", "value"}:
                raise ValueError(f"label #{i + 1} must be a mapping with exactly 'key' and 'value'")
            out[str(item["key"])] = item["value"]
        value = out
    if not isinstance(value, dict):
        raise ValueError("labels must be a map of key: value, or a list of {key, value}")
    for key, item in value.items():
        if str(key).startswith("system.") and key != "system.readOnly":
            raise ValueError(f"label key {key!r} is reserved (only system.readOnly may be set)")
        if item is not None and not isinstance(item, _SCALAR):
            raise ValueError(f"label {key!r} must have a scalar value")
    return {str(k): ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}


Labels = Annotated[
    dict[str, str],
    BeforeValidator(_labels),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"key": {"type": "string"}, "value": {}},
                        "required": ["key", "value"],
                    },
                },
            ]
        }
    ),
]


class LogLevel(StrEnum):
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Level = Annotated[LogLevel, BeforeValidator(_upper)]

Json = Any
"""Any YAML value (map, list, scalar) kept as the user wrote it."""

StringMap = dict[str, Any]

Description = Annotated[str | None, Field(default=None, description="Markdown description")]
