"""Tasks that act on the execution itself: `Fail`, `Exit`, `Labels`, `Assert`."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field, TypeAdapter, ValidationError

from plugins.core._props import as_map
from runner.api import RunContext, TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.records import TaskRunRecord
from runner.plugin import Task
from runner.signals import EXIT_STATES, ExitExecution
from runner.states import State
from runner.truthy import truthy
from runner.types import Dyn
from runner.types import Labels as LabelMap

_LABELS: TypeAdapter[dict[str, str]] = TypeAdapter(LabelMap)
SYSTEM_PREFIX = "system."


class Fail(Task):
    """Fail the execution, always or when `condition` renders truthy."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.execution.Fail"
    runs_inline: ClassVar[bool] = True  # only computes: runs on the engine's thread
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.executions.Fail",)

    condition: str | bool | None = None
    """Expression; the task fails only when it renders truthy (always when unset)."""
    errorMessage: str = "Task failure"
    """The failure message."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if self.condition is None or truthy(self.condition):
            raise TaskFailed(self.errorMessage)
        return {}


class Exit(Task):
    """End the execution now in the given state."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.execution.Exit"
    runs_inline: ClassVar[bool] = True  # only computes: runs on the engine's thread

    state: Dyn[Literal["SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELLED", "CANCELED"]] = "SUCCESS"
    """The state the execution ends in (KILLED also kills running tasks). Kestra spells it CANCELLED."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        state = str(self.state).strip().upper().replace("CANCELED", "CANCELLED")
        if state not in EXIT_STATES:
            raise TaskFailed(f"state must be one of {', '.join(EXIT_STATES)}, got {self.state!r}")
        ctx.logger.info(f"Exit: the execution ends in state {state}")
        raise ExitExecution(state)


class Labels(Task):
    """Add labels to the current execution."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.execution.Labels"
    runs_inline: ClassVar[bool] = True  # only computes: runs on the engine's thread
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.executions.Labels",)

    labels: LabelMap | str
    """A map key: value, a list of {key, value}, or a string (an expression) that renders to a JSON map or list."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        value: Any = self.labels
        if isinstance(value, str):
            value = _json_labels(value)
        if isinstance(value, dict | list):
            system = next((key for key in _keys(value) if key.startswith(SYSTEM_PREFIX)), None)
            if system is not None:
                raise TaskFailed(
                    f"labels: {system!r} is reserved: system labels are set by gitsync itself (system.correlationId "
                    "names the first execution of a chain); give the label a name outside 'system.'"
                )
        try:
            labels = _LABELS.validate_python(value)
        except ValidationError as exc:
            raise TaskFailed(f"labels: {exc.errors()[0]['msg']}") from None
        ctx.new_labels.update(labels)
        return {}


def _keys(value: dict[Any, Any] | list[Any]) -> list[str]:
    if isinstance(value, dict):
        return [str(key) for key in value]
    return [str(item.get("key")) for item in value if isinstance(item, dict)]


def _json_labels(text: str) -> Any:
    """A rendered expression: JSON text of a map or of a list of {key, value}."""
    try:
        return json.loads(text)
    except ValueError:
        return as_map(text, "labels")  # raises with the property's name


class Assert(Task):
    """Fail when any of the conditions renders false (`false`, `0`, `-0`, an empty text), or cannot render."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.execution.Assert"
    flowable: ClassVar[bool] = True  # decided by the engine: each condition is rendered on its own, as Kestra does

    conditions: list[str] = Field(min_length=1)
    """The conditions, each an expression that must hold."""
    errorMessage: str | None = None
    """Added to the failure message."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        variables = ctx.variables(self, scope, record)
        failed: list[str] = []
        for condition in self.conditions:
            try:
                if not truthy(ctx.evaluate(condition, variables)):
                    failed.append(f"Assertion `{condition}` failed!")
            except TaskFailed as exc:
                failed.append(f"Assertion `{condition}` failed, failed to render `{exc.message}`")
        if failed:
            count = len(failed)
            message = f"{count} assertion{'s' if count > 1 else ''} failed!"
            if self.errorMessage:
                message += "\n" + str(ctx.render(self.errorMessage, variables))
            raise TaskFailed("\n".join([message, *failed]))
        return State.SUCCESS
