"""`ForEachItem`: split a stored file into batches of lines and run a subflow for each batch.

As in Kestra, the batches are `batch.rows` lines (1 by default), `batch.bytes` of text or `batch.partitions`
files; each subflow gets `{{ taskrun.items }}` (the batch's kestra:/// URI) and `{{ taskrun.iteration }}` (from 1)
in its `inputs`. The outputs are Kestra's, under the names of its internal tasks: `outputs.<id>_split.splits` (a
file listing the batches' URIs), `outputs.<id>_items` (`numberOfBatches`, `iterations`: the count of subflow
executions per end state), `outputs.<id>_merge.subflowOutputs` (an Ion file, one line per batch in order, holding
that subflow's flow outputs). The subflows run `CONCURRENCY` at a time, waited for unless `wait: false`.
"""

from __future__ import annotations

from functools import partial
from pathlib import PurePosixPath
from typing import Any, ClassVar

from pydantic import Field

from plugins.core._props import as_int
from plugins.core.files import readable_bytes, split_lines
from plugins.core.subflow import Subflow
from plugins.ion import dumps_row
from plugins.values import Options
from runner.api import TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope, run_concurrently
from runner.engine.records import SubflowResult, TaskRunRecord
from runner.plugin import FlowableTask
from runner.states import State
from runner.types import Dyn, Expression, Labels

CONCURRENCY = 4
"""Subflow executions running at once (Kestra starts them all; a bound keeps one file from flooding the runner)."""


class Batch(Options):
    """How the items are split: by rows (the default, 1), by bytes, or into partitions."""

    rows: Dyn[int] | None = None
    """Lines per batch (1 when neither bytes nor partitions is given)."""
    bytes: Dyn[str] | None = None
    """Size of a batch (`10MB`): it ends at the first line that takes it to this size."""
    partitions: Dyn[int] | None = None
    """How many batches: the lines are dealt to them in turn."""
    separator: Dyn[str] = "\n"
    """What ends each line written to a batch."""


class ForEachItem(FlowableTask):
    """Run a subflow for each batch of lines of a stored file (an Ion file from a query or a serdes task, JSON
    lines, or CSV without a header)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.ForEachItem"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.core.tasks.flows.ForEachItem",
        "io.kestra.plugin.core.flows.ForEachItem",  # a misspelling that a Kestra blueprint uses
    )

    items: str
    """The file's kestra:/// URI (an output's `uri`, or a FILE input)."""
    batch: Batch = Field(default_factory=Batch)
    """How to split the items."""
    namespace: str = Field(min_length=1)
    """Namespace of the subflow; rendered."""
    flowId: str
    """Id of the subflow; rendered."""
    revision: int | None = Field(default=None, ge=1)
    """Revision of the subflow (the latest when unset)."""
    inputs: dict[str, Any] | None = None
    """Inputs of each subflow execution, rendered with `taskrun.items` and `taskrun.iteration`."""
    labels: Labels | Expression | None = None
    """Labels of each subflow execution."""
    wait: bool = True
    """Wait for the subflow executions to end."""
    transmitFailed: bool = True
    """Fail this task when a subflow execution fails or is killed (with wait)."""
    inheritLabels: bool = False
    """Copy this execution's labels to each subflow execution."""
    scheduleDate: str | None = None
    """Schedule the subflow executions at this date instead of now."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        variables = ctx.variables(self, scope, record)
        uris = self._split(ctx, scope, record, variables)
        results: list[SubflowResult | None] = [None] * len(uris)

        def job(index: int) -> State:
            result = self._run_one(ctx, variables, uris[index], index + 1)
            results[index] = result
            return result.state

        run_concurrently([partial(job, index) for index in range(len(uris))], CONCURRENCY)
        done = [result for result in results if result is not None]
        counts: dict[str, int] = {}
        for result in done:
            counts[result.state.value] = counts.get(result.state.value, 0) + 1
        items = {"numberOfBatches": len(uris), "iterations": counts}
        ctx.publish(self.model_copy(update={"id": f"{self.id}_items"}), scope, items)
        outputs: dict[str, Any] = dict(items)
        if self.wait:
            merged = self._merge(ctx, record, done)
            ctx.publish(self.model_copy(update={"id": f"{self.id}_merge"}), scope, {"subflowOutputs": merged})
            outputs["uri"] = merged
        failed = [r for r in done if r.state.is_failure]
        if self.wait and self.transmitFailed and failed:
            first = failed[0]
            raise TaskFailed(
                f"{len(failed)} of {len(uris)} subflow execution(s) did not succeed (the first, {first.execution_id}, "
                f"ended {first.state.value})",
                outputs,
            )
        warned = self.wait and any(r.state == State.WARNING for r in done)
        return (State.WARNING if warned else State.SUCCESS), outputs

    def _split(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord, variables: dict[str, Any]) -> list[str]:
        uri = str(ctx.render(self.items, variables)).strip()
        if not uri.startswith("kestra://"):
            raise TaskFailed(f"Unable to split the items from {uri[:120]!r}: items must be a kestra:/// URI")
        source = ctx.storage.path(uri)
        batch = Batch.model_validate(ctx.render(self.batch.model_dump(exclude_none=True), variables))
        rows = None if batch.rows is None else as_int(batch.rows, "batch.rows")
        size = None if batch.bytes is None else readable_bytes(batch.bytes, "batch.bytes")
        partitions = None if batch.partitions is None else as_int(batch.partitions, "batch.partitions")
        if rows is None and size is None and partitions is None:
            rows = 1
        suffix = PurePosixPath(uri).suffix or ".tmp"
        workdir = ctx.working_directory(record)
        parts = split_lines(workdir, self.id, source, suffix, str(batch.separator), rows, size, partitions)
        stem = PurePosixPath(uri).stem or self.id
        uris = []
        for index, part in enumerate(parts):
            uris.append(ctx.storage.put(part, f"{stem}-{index}{suffix}"))
            part.unlink(missing_ok=True)
        listing = workdir / f".{self.id}-splits.txt"
        listing.write_text("\n".join(uris), encoding="utf-8")
        splits = ctx.storage.put(listing, "splits.txt")
        listing.unlink(missing_ok=True)
        ctx.publish(self.model_copy(update={"id": f"{self.id}_split"}), scope, {"splits": splits})
        return uris

    def _run_one(self, ctx: FlowableContext, variables: dict[str, Any], uri: str, iteration: int) -> SubflowResult:
        taskrun = {**variables.get("taskrun", {}), "items": uri, "iteration": iteration}
        scoped = {**variables, "taskrun": taskrun}
        raw = {
            "id": f"{self.id}_items",
            "type": Subflow.type_name,
            "namespace": self.namespace,
            "flowId": self.flowId,
            "inputs": self.inputs or {},
            "wait": self.wait,
            "transmitFailed": self.transmitFailed,
            "inheritLabels": self.inheritLabels,
        }
        for key in ("revision", "labels", "scheduleDate"):
            if getattr(self, key) is not None:
                raw[key] = getattr(self, key)
        try:
            task = Subflow.model_validate(ctx.render(raw, scoped))
        except ValueError as exc:
            raise TaskFailed(f"the subflow of batch {iteration} cannot be made: {exc}") from None
        labels = {k: v for k, v in ctx.labels.items() if task.inheritLabels or k.startswith("system.")}
        labels.update(task.labels or {})  # type: ignore[arg-type]  # validated to a map once rendered
        return ctx.subflow(task, dict(task.inputs or {}), labels)

    def _merge(self, ctx: FlowableContext, record: TaskRunRecord, results: list[SubflowResult]) -> str:
        local = ctx.working_directory(record) / f".{self.id}-outputs.ion"
        with local.open("w", encoding="utf-8") as out:
            for result in results:
                out.write(dumps_row(result.outputs or {}) + "\n")
        uri = ctx.storage.put(local, "outputs.ion")
        local.unlink(missing_ok=True)
        return uri
