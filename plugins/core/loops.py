"""Loops: `ForEach` and the deprecated `EachSequential` / `EachParallel`."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from runner.plugin import FlowableTask, TaskList

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


class EachSequential(FlowableTask):
    """Deprecated (use ForEach): run the child tasks once per value, one value at a time."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.EachSequential"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.EachSequential",)

    value: Values
    """The values to iterate over."""
    tasks: TaskList = Field(min_length=1)
    """The child tasks, run for each value."""


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
