"""Reading rendered property values in `run`: the engine renders `{{ }}` to text, so a `Dyn[bool]` may arrive as
`True` or as `"true"`, a duration as a `timedelta` or as `"PT5S"`. These helpers accept both and fail the task
with the property's name when the value has the wrong shape.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from runner.api import TaskFailed
from runner.durations import parse_duration


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise TaskFailed(f"{name} must be true or false, got {value!r}")


def as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TaskFailed(f"{name} must be an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise TaskFailed(f"{name} must be an integer, got {value!r}") from None


def as_seconds(value: Any, name: str) -> float | None:
    """A duration (timedelta, ISO-8601 text, or a number of seconds) in seconds; None when unset."""
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return parse_duration(str(value)).total_seconds()
    except ValueError as exc:
        raise TaskFailed(f"{name}: {exc}") from None


def as_map(value: Any, name: str) -> dict[str, Any]:
    """A map, or JSON text of one (what an expression renders to); {} when unset."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TaskFailed(f"{name} must be a map (or JSON text of one), got {value[:80]!r}") from None
    if not isinstance(value, dict):
        raise TaskFailed(f"{name} must be a map, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def as_str_list(value: Any, name: str) -> list[str]:
    """A list of strings, JSON text of one, or comma-separated text; [] when unset."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise TaskFailed(f"{name} must be a list, got {text[:80]!r}") from None
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list):
        raise TaskFailed(f"{name} must be a list, got {type(value).__name__}")
    return [str(item) for item in value]


def mask(text: str, *secrets: str | None) -> str:
    """`text` with each secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
