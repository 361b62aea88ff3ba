"""Key-value store tasks: `Set`, `Get`, `Delete`, `GetKeys`."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from plugins.core._props import as_bool, as_seconds
from runner.api import MISSING, RunContext, TaskFailed
from runner.durations import parse_duration
from runner.plugin import Task
from runner.types import Dyn, DynDuration

KVType = Literal["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]


class _KV(Task):
    namespace: str = "{{ flow.namespace }}"
    """Namespace of the store (the flow's own by default)."""

    def _namespace(self, ctx: RunContext) -> str:
        """The rendered namespace; the flow's own when it is empty (or was left unrendered)."""
        namespace = (self.namespace or "").strip()
        return ctx.namespace if not namespace or "{{" in namespace else namespace


class Set(_KV):
    """Store a value under a key."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.kv.Set"

    key: str
    """The key; rendered."""
    value: Any
    """The value; rendered."""
    overwrite: Dyn[bool] = True
    """Replace an existing value (fail when false and the key exists)."""
    ttl: DynDuration | None = None
    """How long the value lives."""
    kvType: Dyn[KVType] | None = None
    """The type the value is stored as."""
    kvDescription: str | None = None
    """A description of the pair; Kestra shows it in its UI, gitsync's kv store keeps values only."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace, key = self._namespace(ctx), self.key
        if not KEY.match(key):
            raise TaskFailed(
                f"key {key!r} is invalid: use letters, digits, '.', '_' and '-', starting with a letter or digit"
            )
        ttl = as_seconds(self.ttl, "ttl")
        if ttl is not None and ttl <= 0:
            raise TaskFailed(f"ttl must be a positive duration, got {self.ttl!r}")
        value = typed_value(self.value, self.kvType)
        if not as_bool(self.overwrite, "overwrite") and ctx.kv.get(namespace, key) is not MISSING:
            raise TaskFailed(_exists(namespace, key))
        try:
            ctx.kv.set(namespace, key, value, ttl_seconds=ttl, overwrite=as_bool(self.overwrite, "overwrite"))
        except TaskFailed:  # another task run set the key between the check and the write
            raise TaskFailed(_exists(namespace, key)) from None
        ctx.logger.debug(f"kv: set {key!r} in namespace {namespace!r}")
        return {}


class Get(_KV):
    """Read the value of a key (the `value` output)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.kv.Get"

    key: str
    """The key; rendered."""
    errorOnMissing: Dyn[bool] = False
    """Fail when the key does not exist."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self._namespace(ctx)
        value = ctx.kv.get(namespace, self.key)
        if value is MISSING:
            if as_bool(self.errorOnMissing, "errorOnMissing"):
                raise TaskFailed(_missing(namespace, self.key))
            value = None
        return {"value": value}


class Delete(_KV):
    """Delete a key."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.kv.Delete"

    key: str
    """The key; rendered."""
    errorOnMissing: Dyn[bool] = False
    """Fail when the key does not exist."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self._namespace(ctx)
        deleted = ctx.kv.delete(namespace, self.key)
        if not deleted and as_bool(self.errorOnMissing, "errorOnMissing"):
            raise TaskFailed(_missing(namespace, self.key))
        return {"deleted": deleted}


class GetKeys(_KV):
    """List the keys (optionally under a prefix)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.kv.GetKeys"

    prefix: str | None = None
    """Only keys starting with this."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return {"keys": ctx.kv.keys(self._namespace(ctx), self.prefix or None)}


KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
"""Kestra's KV key pattern."""


def _exists(namespace: str, key: str) -> str:
    return f"Cannot set value for key {key!r} in namespace {namespace!r}: the key already exists and overwrite is false"


def _missing(namespace: str, key: str) -> str:
    return f"No value found for key {key!r} in namespace {namespace!r} and errorOnMissing is true"


def typed_value(value: Any, kv_type: str | None) -> Any:
    """`value` as `kvType` says (None: as it is); TaskFailed when it does not convert."""
    if kv_type is None:
        return value
    kind = str(kv_type).strip().upper()
    try:
        return _CONVERT[kind](value)
    except KeyError:
        raise TaskFailed(f"kvType must be one of {', '.join(_CONVERT)}, got {kv_type!r}") from None
    except (TypeError, ValueError) as exc:
        raise TaskFailed(f"value {value!r} is not a valid {kind}: {exc}") from None


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() not in ("true", "false"):
        raise ValueError("expected true or false")
    return str(value).strip().lower() == "true"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value).strip()
    datetime.fromisoformat(text.replace("Z", "+00:00"))
    return text


def _date(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else date.fromisoformat(str(value).strip()).isoformat()


def _duration(value: Any) -> str:
    text = str(value).strip()
    parse_duration(text)
    return text


_CONVERT = {
    "STRING": lambda value: (
        value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else str(value)
    ),
    "NUMBER": _number,
    "BOOLEAN": _boolean,
    "DATETIME": _datetime,
    "DATE": _date,
    "DURATION": _duration,
    "JSON": _json,
}
