"""Waiting tasks: `Pause` (until resumed, or for a duration) and `Sleep`."""

from __future__ import annotations

from typing import ClassVar, Literal

from runner.inputs import Input
from runner.plugin import FlowableTask, Task, TaskList
from runner.types import Dyn, DynDuration


class Pause(FlowableTask):
    """Pause the execution until it is resumed (UI/API) or `pauseDuration` has passed."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Pause"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.Pause",)

    pauseDuration: DynDuration | None = None
    """Resume automatically after this duration (wait forever when unset, unless `timeout`)."""
    delay: DynDuration | None = None
    """Deprecated name of `pauseDuration`."""
    behavior: Dyn[Literal["RESUME", "WARN", "CANCEL", "FAIL"]] = "RESUME"
    """What happens when the pause duration ends: continue, continue in WARNING, cancel, fail."""
    onResume: list[Input] | None = None
    """Inputs asked for when resuming; their values are the `onResume` output."""
    tasks: TaskList | None = None
    """Deprecated: tasks run after the pause."""


class Sleep(Task):
    """Wait for a fixed duration."""

    flowable: ClassVar[bool] = True  # a timer the engine keeps (no worker is held while it waits)
    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Sleep"

    duration: DynDuration
    """How long to wait (ISO-8601, e.g. PT30S)."""
