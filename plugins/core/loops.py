"""Loops: `ForEach`, `LoopUntil` (alias WaitFor) and the deprecated `EachSequential` / `EachParallel`."""

from __future__ import annotations

import json
from datetime import timedelta
from time import monotonic
from typing import Any, ClassVar

from pydantic import Field

from plugins.values import Options
from runner.api import TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope, run_concurrently
from runner.engine.records import TaskRunRecord
from runner.plugin import FlowableTask, TaskList
from runner.states import State, combine
from runner.truthy import truthy
from runner.types import Duration

Values = list[Any] | str
"""A list, or a JSON array string / expression that renders to one."""


class ForEach(FlowableTask):
    """Run the child tasks once per value (`{{ taskrun.value }}`), `concurrencyLimit` at a time."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.ForEach"

    values: Values
    """The values to iterate over."""
    concurrencyLimit: int = Field(default=1, ge=0)
    """How many iterations run at once (0: no limit)."""
    tasks: TaskList = Field(min_length=1)
    """The child tasks, run for each value."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        values = _values(ctx, self, scope, record, self.values)
        return _loop(ctx, self, self.tasks, scope, record, values, self.concurrencyLimit)


class EachSequential(FlowableTask):
    """Deprecated (use ForEach): run the child tasks once per value, one value at a time."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.EachSequential"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.EachSequential",)

    value: Values
    """The values to iterate over."""
    tasks: TaskList = Field(min_length=1)
    """The child tasks, run for each value."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        return _loop(ctx, self, self.tasks, scope, record, _values(ctx, self, scope, record, self.value), 1)


class EachParallel(FlowableTask):
    """Deprecated (use ForEach with concurrencyLimit): run the child tasks once per value, concurrently."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.EachParallel"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.EachParallel",)

    value: Values
    """The values to iterate over."""
    concurrent: int = Field(default=0, ge=0)
    """How many iterations run at once (0: no limit)."""
    tasks: TaskList = Field(min_length=1)
    """The child tasks, run for each value."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        values = _values(ctx, self, scope, record, self.value)
        return _loop(ctx, self, self.tasks, scope, record, values, self.concurrent)


def _values(ctx: FlowableContext, task: FlowableTask, scope: Scope, record: TaskRunRecord, raw: Any) -> list[Any]:
    """The loop's values: a list, or an expression / JSON text rendering to one; null items are refused.

    Only the flow's own text is rendered: a list written in the YAML has its items rendered (once), but the
    value an expression evaluates to (inputs, trigger bodies, outputs, kv values…) is data and is never
    rendered again: an item holding `{{ secret('X') }}` stays that text."""
    if isinstance(raw, str):
        value = ctx.evaluate(raw, ctx.variables(task, scope, record))
    else:
        value = ctx.render(raw, ctx.variables(task, scope, record)) if isinstance(raw, list) else raw
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise TaskFailed(f"values must be a list or a JSON array, got {value[:80]!r}") from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise TaskFailed(f"values must be a list, got {type(value).__name__}")
    nulls = sum(1 for item in value if item is None)
    if nulls:
        raise TaskFailed(f"Found '{nulls}' null values on Each, with values={json.dumps(value)}")
    return value


def _key(value: Any) -> str:
    """The value as `taskrun.value` shows it, and the key of the loop's outputs: strings as-is, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _loop(
    ctx: FlowableContext,
    task: FlowableTask,
    tasks: list[Any],
    scope: Scope,
    record: TaskRunRecord,
    values: list[Any],
    limit: int,
) -> State:
    jobs = []
    for iteration, value in enumerate(values):
        key = _key(value)
        inner = scope.child(record.id, task.id, value=key, iteration=iteration, loop_values=(*scope.loop_values, key))
        jobs.append(lambda inner=inner: ctx.run_list(tasks, inner))
    return combine(run_concurrently(jobs, limit, stop_on_failure=limit == 1))


class CheckFrequency(Options):
    """How often LoopUntil runs its tasks again, and when it gives up."""

    maxIterations: int = Field(default=100, ge=1)
    """The most iterations."""
    maxDuration: Duration = timedelta(hours=1)
    """The longest the loop runs."""
    interval: Duration = timedelta(seconds=1)
    """The wait between two iterations."""


class LoopUntil(FlowableTask):
    """Run the tasks again and again until `condition` holds (it reads their outputs), every `interval`."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.LoopUntil"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.WaitFor",)

    tasks: TaskList = Field(min_length=1)
    """The tasks run at each iteration."""
    condition: str | bool
    """Evaluated after each iteration: the loop ends when it holds (`false`, `0`, `-0`, null and '' do not)."""
    failOnMaxReached: bool = False
    """End in FAILED when maxIterations or maxDuration is reached first (else SUCCESS)."""
    checkFrequency: CheckFrequency = Field(default_factory=CheckFrequency)
    """The interval between iterations, and the most iterations and time."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        limits = self.checkFrequency
        deadline = monotonic() + limits.maxDuration.total_seconds()
        iteration = 1
        while True:
            ctx.publish(self, scope, {"iterationCount": iteration})
            inner = scope.child(record.id, self.id, iteration=iteration - 1)
            state = ctx.run_list(self.tasks, inner)
            if state.is_failure or ctx.cancelled.is_set():
                return state, {"iterationCount": iteration}
            if truthy(ctx.evaluate(self.condition, ctx.variables(self, scope, record))):
                return state, {"iterationCount": iteration}
            reached = iteration >= limits.maxIterations or monotonic() >= deadline
            if reached:
                why = "maxIterations" if iteration >= limits.maxIterations else "maxDuration"
                if self.failOnMaxReached:
                    raise TaskFailed(
                        f"the condition did not hold after {iteration} iteration(s): {why} was reached "
                        "(failOnMaxReached is true)",
                        outputs={"iterationCount": iteration},
                    )
                return state, {"iterationCount": iteration}
            if ctx.cancelled.wait(min(limits.interval.total_seconds(), max(0.0, deadline - monotonic()))):
                return State.KILLED, {"iterationCount": iteration}
            iteration += 1
