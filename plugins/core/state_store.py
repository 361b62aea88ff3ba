"""The legacy state store (`state.Get/Set/Delete`, removed in Kestra 2.0, which moved it to the KV store): a map of
data per flow and name (and per `taskrun.value` inside a loop), kept here in the KV store of the flow's namespace
under `kestra-state.<flow>.<name>[.<digest of the value>]`, where `kv()` and the kv tasks read it too."""

from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar

from runner.api import MISSING, RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

PREFIX = "kestra-state"
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,100}$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class _StateTask(Task):
    runs_inline: ClassVar[bool] = True

    name: str
    """The state's name (one map of data per flow and name)."""
    namespace: str | None = None
    """The namespace whose store holds it (the flow's by default)."""
    taskrunValue: Dyn[bool] = True
    """Keep one state per `taskrun.value` inside a loop (false: one state for every iteration)."""

    def key(self, ctx: RunContext) -> str:
        name = self.name if _PLAIN.match(self.name) else _digest(self.name)
        key = f"{PREFIX}.{ctx.flow_id}.{name}"
        if self.taskrunValue is not False and ctx.value is not None:
            key += f".{_digest(str(ctx.value))}"
        return key

    def current(self, ctx: RunContext) -> dict[str, Any] | None:
        value = ctx.kv.get(self.store(ctx), self.key(ctx))
        if value is MISSING:
            return None
        return value if isinstance(value, dict) else {"value": value}

    def store(self, ctx: RunContext) -> str:
        return self.namespace or ctx.namespace


class Get(_StateTask):
    """Read a state: output `data` (its map, empty when missing) and `count`."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.state.Get"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.states.Get",)

    errorOnMissing: Dyn[bool] = False
    """Fail when the state does not exist (else `data` is empty)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        data = self.current(ctx)
        if data is None and self.errorOnMissing is True:
            raise TaskFailed(f"state {self.name!r} does not exist (errorOnMissing is true)")
        data = data or {}
        return {"data": data, "count": len(data)}


class Set(_StateTask):
    """Write a state: `data` is merged into the existing map (its keys replaced); outputs `count` and `key`."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.state.Set"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.states.Set",)

    data: Dyn[dict[str, Any]] | None = None
    """The values to store."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if self.data is not None and not isinstance(self.data, dict):
            raise TaskFailed(f"data must be a map of values, got {str(self.data)[:80]!r}")
        merged = {**(self.current(ctx) or {}), **(self.data or {})}
        key = self.key(ctx)
        ctx.kv.set(self.store(ctx), key, merged)
        return {"count": len(merged), "key": key}


class Delete(_StateTask):
    """Delete a state; output `deleted`."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.state.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.states.Delete",)

    errorOnMissing: Dyn[bool] = False
    """Fail when the state does not exist."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        deleted = ctx.kv.delete(self.store(ctx), self.key(ctx))
        if not deleted and self.errorOnMissing is True:
            raise TaskFailed(f"state {self.name!r} does not exist (errorOnMissing is true)")
        return {"deleted": deleted}
