"""Key-value store tasks: `Set`, `Get`, `Delete`, `GetKeys`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from runner.plugin import Task
from runner.types import Dyn, DynDuration

KVType = Literal["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]


class _KV(Task):
    namespace: str = "{{ flow.namespace }}"
    """Namespace of the store (the flow's own by default)."""


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


class Get(_KV):
    """Read the value of a key (the `value` output)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.kv.Get"

    key: str
    """The key; rendered."""
    errorOnMissing: Dyn[bool] = False
    """Fail when the key does not exist."""


class Delete(_KV):
    """Delete a key."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.kv.Delete"

    key: str
    """The key; rendered."""
    errorOnMissing: Dyn[bool] = False
    """Fail when the key does not exist."""


class GetKeys(_KV):
    """List the keys (optionally under a prefix)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.kv.GetKeys"

    prefix: str | None = None
    """Only keys starting with this."""
