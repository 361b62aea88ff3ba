"""`Loop` (Kestra 2.x, which replaces ForEach, EachSequential and EachParallel): the child tasks once per item of
a list, a map or a stored file's lines, with `{{ item.value }}`, `item.index` (and `item.key` for a map) seen by
every task inside, however deep."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field

from runner.api import TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope, run_concurrently
from runner.engine.records import TaskRunRecord
from runner.plugin import FlowableTask, TaskList
from runner.states import combine

STORAGE = "kestra:///"
MAX_ITEMS = 100_000
"""More iterations than this is a mistake (a whole file looped line by line into task runs): refused."""


def _items(value: Any, ctx: FlowableContext) -> list[dict[str, Any]]:
    """The iterations of a rendered `values`: a list, a map (key and value), a JSON text of either, or the URI of
    a stored file (one iteration per line)."""
    if isinstance(value, str) and value.strip().startswith(STORAGE):
        with ctx.storage.path(value.strip()).open(encoding="utf-8") as handle:
            value = [line.rstrip("\r\n") for line in handle]
    elif isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise TaskFailed(
                f"values must be a list, a map, a JSON array or object, or a kestra:/// file URI; got {value[:80]!r}"
            ) from None
    if value is None:
        return []
    if isinstance(value, dict):
        items = [{"key": str(k), "value": v, "index": i} for i, (k, v) in enumerate(value.items())]
    elif isinstance(value, list):
        items = [{"value": v, "index": i} for i, v in enumerate(value)]
    else:
        raise TaskFailed(f"values must be a list or a map, got {type(value).__name__}")
    if len(items) > MAX_ITEMS:
        raise TaskFailed(f"values has {len(items)} items; a Loop runs at most {MAX_ITEMS} iterations")
    return items


def _key(item: dict[str, Any]) -> str:
    """How an iteration is named in task runs (`taskrun.value`) and in the loop's outputs."""
    if "key" in item:
        return str(item["key"])
    value = item["value"]
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


class Loop(FlowableTask):
    """Run the child tasks once per item of `values`, `concurrencyLimit` iterations at a time."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Loop"

    values: list[Any] | dict[str, Any] | str
    """The items: a list, a map, an expression or JSON text giving one, or a kestra:/// file (one item a line)."""
    concurrencyLimit: int = Field(default=1, ge=0)
    """How many iterations run at once (0: no limit, 1: one after the other)."""
    tasks: TaskList = Field(min_length=1)
    """The child tasks, run for each item."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        variables = ctx.variables(self, scope, record)
        raw = self.values
        # the flow's own text is rendered; what an expression gives (inputs, outputs, bodies) is data, never again
        value = ctx.evaluate(raw, variables) if isinstance(raw, str) else ctx.render(raw, variables)
        jobs = []
        for item in _items(value, ctx):
            key = _key(item)
            inner = scope.child(
                record.id,
                self.id,
                value=key,
                iteration=item["index"],
                loop_values=(*scope.loop_values, key),
                item=item,
            )
            jobs.append(lambda inner=inner: ctx.run_list(self.tasks, inner))
        limit = self.concurrencyLimit
        return combine(run_concurrently(jobs, limit, stop_on_failure=limit == 1)), {}
