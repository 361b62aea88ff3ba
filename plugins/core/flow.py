"""Flowable tasks that branch: `Sequential`, `Parallel`, `If`, `Switch`, `AllowFailure`."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from runner.api import TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope, run_concurrently
from runner.engine.records import TaskRunRecord
from runner.plugin import FlowableTask, Kind, Shape, TaskList, TaskListMap
from runner.states import combine
from runner.truthy import truthy


class Sequential(FlowableTask):
    """Run the child tasks one after the other."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Sequential"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.Sequential",)

    tasks: TaskList = Field(min_length=1)
    """The child tasks."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        return ctx.run_list(self.tasks, scope.child(record.id, self.id))


class Parallel(FlowableTask):
    """Run the child tasks concurrently."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Parallel"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.Parallel",)

    tasks: TaskList = Field(min_length=1)
    """The child tasks."""
    concurrent: int = Field(default=0, ge=0)
    """How many children run at once (0: all)."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        inner = scope.child(record.id, self.id)
        jobs = [lambda child=child: ctx.run_task(child, inner) for child in self.tasks]
        return combine(run_concurrently(jobs, self.concurrent))


class If(FlowableTask):
    """Run `then` when the condition renders truthy, `else` otherwise."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.If"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.If",)
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {
        "then": ("task", "list"),
        "else": ("task", "list"),
        "errors": ("task", "list"),
        "finally": ("task", "list"),
    }

    condition: str | bool
    """Expression; true, 1, 'true' (any case) are truthy."""
    then: TaskList = Field(min_length=1)
    """Tasks run when the condition is truthy."""
    else_: TaskList | None = Field(default=None, alias="else")
    """Tasks run when the condition is falsy."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        result = truthy(ctx.evaluate(self.condition, ctx.variables(self, scope, record)))
        branch = self.then if result else self.else_
        return ctx.run_list(branch, scope.child(record.id, self.id)), {"evaluationResult": result}


def _string_keys(value: Any) -> Any:
    # YAML reads `1:` or `true:` as non-string keys; Kestra's map keys are always strings.
    if isinstance(value, dict):
        return {(str(k).lower() if isinstance(k, bool) else str(k)): v for k, v in value.items()}
    return value


class Switch(FlowableTask):
    """Run the tasks of the case whose key equals the rendered `value`, else `defaults`."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Switch"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.Switch",)
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {
        "cases": ("task", "map_of_lists"),
        "defaults": ("task", "list"),
        "errors": ("task", "list"),
        "finally": ("task", "list"),
    }

    value: str
    """The value to match against the case keys; rendered."""
    cases: TaskListMap | None = None
    """Case key -> tasks."""
    defaults: TaskList | None = None
    """Tasks run when no case matches."""

    @field_validator("cases", mode="before")
    @classmethod
    def _case_keys(cls, value: Any) -> Any:
        value = _string_keys(value)
        if isinstance(value, dict):
            for key, tasks in value.items():
                if not isinstance(tasks, list):
                    raise ValueError(f"case {key!r} must be a list of tasks")
        return value

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        """Kestra fails a Switch that has nothing to run (no case matches and no `defaults`); its outputs say the
        rendered value and whether no case matched (`defaults`)."""
        value = ctx.render(self.value, ctx.variables(self, scope, record))
        key = str(value).lower() if isinstance(value, bool) else str(value)
        cases = self.cases or {}
        outputs = {"value": key, "defaults": key not in cases}
        branch = cases.get(key, self.defaults)
        if branch is None:
            raise TaskFailed(
                f"no case matches the value {key!r} and the Switch has no defaults, so it has no task to run; "
                f"add a case {key!r} or a defaults list",
                outputs,
            )
        return ctx.run_list(branch, scope.child(record.id, self.id)), outputs


class AllowFailure(FlowableTask):
    """Run the child tasks; a failure among them ends this task in WARNING instead of failing the flow."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.AllowFailure"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.AllowFailure",)
    absorbs_failure: ClassVar[bool] = True  # the engine runs its `errors`, then ends it in WARNING

    tasks: TaskList = Field(min_length=1)
    """The child tasks."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        """The children's failure is returned as is, so the local `errors` run; the engine then makes it a
        WARNING (`absorbs_failure`)."""
        return ctx.run_list(self.tasks, scope.child(record.id, self.id))
