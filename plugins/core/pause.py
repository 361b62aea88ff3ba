"""Waiting tasks: `Pause` (until resumed, or for a duration) and `Sleep`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from runner.api import TaskFailed, TaskKilled
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.records import TaskRunRecord
from runner.engine.retry import rendered_seconds, seconds_of
from runner.inputs import Input
from runner.plugin import FlowableTask, Task, TaskList
from runner.states import State
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

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        """With a delay: wait, then go on. Without: the execution is PAUSED until resumed (CLI or API), killed,
        or until the task's `timeout` passes (then the Pause fails). Deprecated nested `tasks` run after."""
        variables = ctx.variables(self, scope, record)
        delay = self.delay or self.pauseDuration
        resumed: dict[str, Any] = {}
        if delay is not None:
            seconds = rendered_seconds(ctx.render(delay, variables) if isinstance(delay, str) else delay)
            if seconds is None:
                raise TaskFailed(f"delay {delay!r} is not a duration")
            if ctx.cancelled.wait(max(0.0, seconds)):
                raise TaskKilled("killed while paused")
        else:
            timeout = rendered_seconds(
                ctx.render(self.timeout, variables) if isinstance(self.timeout, str) else self.timeout
            )
            answer = ctx.pause(record, timeout)
            if answer is None:
                if ctx.cancelled.is_set():
                    raise TaskKilled("killed while paused")
                raise TaskFailed(f"not resumed within the timeout of {timeout:g}s")
            resumed = answer
        state = ctx.run_list(self.tasks, scope.child(record.id, self.id)) if self.tasks else State.SUCCESS
        return state, {"onResume": resumed} if resumed else {}


class Sleep(Task):
    """Wait for a fixed duration."""

    flowable: ClassVar[bool] = True  # a timer the engine keeps (no worker is held while it waits)
    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Sleep"

    duration: DynDuration
    """How long to wait (ISO-8601, e.g. PT30S)."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        """A timer decided by the engine (no worker is held while it waits)."""
        rendered = ctx.render_task(self, ctx.variables(self, scope, record))
        assert isinstance(rendered, Sleep)
        seconds = seconds_of(rendered.duration)
        if seconds is None:
            raise TaskFailed(f"duration {rendered.duration!r} is not a duration")
        if ctx.cancelled.wait(max(0.0, seconds)):
            raise TaskKilled("killed while sleeping")
        return State.SUCCESS
