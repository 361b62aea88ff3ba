"""Tasks that act on the execution itself: `Fail`, `Exit`, `Labels`."""

from __future__ import annotations

from typing import ClassVar, Literal

from runner.plugin import Task
from runner.types import Dyn, Expression
from runner.types import Labels as LabelMap


class Fail(Task):
    """Fail the execution, always or when `condition` renders truthy."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.execution.Fail"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.executions.Fail",)

    condition: str | bool | None = None
    """Expression; the task fails only when it renders truthy (always when unset)."""
    errorMessage: str = "Task failure"
    """The failure message."""


class Exit(Task):
    """End the execution now in the given state."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.execution.Exit"

    state: Dyn[Literal["SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED"]] = "SUCCESS"
    """The state the execution ends in (KILLED also kills running tasks)."""


class Labels(Task):
    """Add labels to the current execution."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.execution.Labels"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.executions.Labels",)

    labels: LabelMap | Expression
    """A map key: value, a list of {key, value}, or an expression rendering to a JSON map."""
