"""Row-by-row storage tasks on Ion files: `FilterItems` and `DeduplicateItems` (Kestra's core storage package).

Their expression is rendered once per row, with the row's fields as variables (`{{ value == null }}`, `{{ key }}`),
so the engine decides them (as it does a flowable, without children): it evaluates the expression itself rather
than rendering the property once before the task runs. A row is written out as the line it was read from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from plugins.core.files import scratch_in
from plugins.ion import loads_row
from runner.api import TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.records import TaskRunRecord
from runner.plugin import Task
from runner.states import State
from runner.truthy import truthy


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            text = line.rstrip("\n")
            if text.strip():
                yield text, loads_row(text, path.name)


def _row_variables(base: dict[str, Any], row: Any) -> dict[str, Any]:
    return {**base, **row} if isinstance(row, dict) else {**base, "value": row}


class FilterItems(Task):
    """Keep (INCLUDE) or drop (EXCLUDE) the rows of an Ion file for which `filterCondition` holds."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.FilterItems"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.FilterItems",)
    flowable: ClassVar[bool] = True  # decided by the engine: its condition is rendered once per row

    from_: str = Field(alias="from")
    """The Ion file's kestra:/// URI."""
    filterCondition: str
    """An expression over the row's fields; `false`, `0`, `-0` and an empty text are false."""
    filterType: Literal["INCLUDE", "EXCLUDE"] = "INCLUDE"
    """INCLUDE keeps the rows where the condition holds, EXCLUDE drops them."""
    errorOrNullBehavior: Literal["FAIL", "INCLUDE", "EXCLUDE"] = "FAIL"
    """A row whose condition fails to render or renders null: FAIL the task, INCLUDE or EXCLUDE the row."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        base = ctx.variables(self, scope, record)
        source = stored_from(ctx, self.from_, base)
        out = scratch_in(ctx.working_directory(record), self.id, ".ion")
        processed = dropped = 0
        with out.open("w", encoding="utf-8") as handle:
            for line, row in _rows(source):
                processed += 1
                keep = self._keeps(ctx, _row_variables(base, row), line)
                if keep:
                    handle.write(line + "\n")
                else:
                    dropped += 1
        uri = ctx.storage.put(out, f"{self.id}.ion")
        out.unlink(missing_ok=True)
        return State.SUCCESS, {"uri": uri, "processedItemsTotal": processed, "droppedItemsTotal": dropped}

    def _keeps(self, ctx: FlowableContext, variables: dict[str, Any], line: str) -> bool:
        try:
            value = ctx.evaluate(self.filterCondition, variables)
            error = None
        except TaskFailed as exc:
            value, error = None, exc.message
        action = self.filterType
        if value is None:
            if self.errorOrNullBehavior == "FAIL":
                why = error or "returned null"
                raise TaskFailed(
                    f"filterCondition `{self.filterCondition}` {why} on the row {line[:200]}; set errorOrNullBehavior "
                    "to INCLUDE or EXCLUDE to keep or drop such rows"
                )
            return self.errorOrNullBehavior == "INCLUDE"
        matched = truthy(value)
        return matched if action == "INCLUDE" else not matched


class DeduplicateItems(Task):
    """Keep, for each key `expr` gives, only the last row with it (in the rows' order)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.DeduplicateItems"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.DeduplicateItems",)
    flowable: ClassVar[bool] = True  # decided by the engine: its key is rendered once per row

    from_: str = Field(alias="from")
    """The Ion file's kestra:/// URI."""
    expr: str
    """The key of a row: an expression over its fields (`{{ id }}`, `{{ a }}-{{ b }}`)."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        base = ctx.variables(self, scope, record)
        source = stored_from(ctx, self.from_, base)
        last: dict[str, int] = {}
        keys: list[str] = []
        for offset, (_, row) in enumerate(_rows(source)):
            key = str(ctx.render(self.expr, _row_variables(base, row)))
            keys.append(key)
            last[key] = offset
        out = scratch_in(ctx.working_directory(record), self.id, ".ion")
        dropped = 0
        with out.open("w", encoding="utf-8") as handle:
            for offset, (line, _) in enumerate(_rows(source)):
                if last[keys[offset]] == offset:
                    handle.write(line + "\n")
                else:
                    dropped += 1
        uri = ctx.storage.put(out, f"{self.id}.ion")
        out.unlink(missing_ok=True)
        outputs = {"uri": uri, "numKeys": len(last), "processedItemsTotal": len(keys), "droppedItemsTotal": dropped}
        return State.SUCCESS, outputs


def stored_from(ctx: FlowableContext, value: str, variables: dict[str, Any]) -> Path:
    """The stored file a (not yet rendered) `from` names."""
    uri = str(ctx.render(value, variables)).strip()
    if not uri.startswith("kestra://"):
        raise TaskFailed(f"from must be the kestra:/// URI of a stored file, not {uri[:120]!r}")
    return ctx.storage.path(uri)
