"""Tasks that act on other executions through the control plane: `execution.Resume` (resume a PAUSED execution)
and `log.Fetch` (an execution's logs into a file). Both are decided by the engine (`flowable`), which reaches the
control plane's `Coordinator`; a worker never opens the database."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

from plugins import ion
from runner.api import TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.records import TaskRunRecord
from runner.plugin import Task
from runner.states import State

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
Level = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]


def _current(ctx: FlowableContext, task: Task, scope: Scope, record: TaskRunRecord) -> dict[str, Any]:
    variables = ctx.variables(task, scope, record)
    return {"execution": variables["execution"]["id"], "flow": variables["flow"]}


class Resume(Task):
    """Resume a PAUSED execution (by default this one's id), with the inputs its Pause asks for."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.execution.Resume"
    flowable: ClassVar[bool] = True  # decided by the engine: the resume is a request to the control plane

    executionId: str | None = None
    """The execution to resume (this one by default)."""
    namespace: str | None = None
    """The namespace of the execution's flow (checked by Kestra's API; informative here)."""
    flowId: str | None = None
    """The execution's flow (informative here)."""
    inputs: dict[str, Any] | None = None
    """The Pause's `onResume` inputs."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        rendered = ctx.render_task(self, ctx.variables(self, scope, record))
        assert isinstance(rendered, Resume)
        target = rendered.executionId or _current(ctx, self, scope, record)["execution"]
        ctx.coordinator.resume(str(target), dict(rendered.inputs or {}))
        return State.SUCCESS, {}


class Fetch(Task):
    """Write an execution's log lines (by default this one's, up to this task) at `level` or above to an Ion file:
    outputs `uri` and `size` (the number of lines)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.log.Fetch"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.log.Fetch",)
    flowable: ClassVar[bool] = True  # decided by the engine: the logs are the control plane's

    executionId: str | None = None
    """The execution whose logs are fetched (this one by default)."""
    namespace: str | None = None
    """The namespace of its flow (informative here)."""
    flowId: str | None = None
    """Its flow (informative here)."""
    tasksId: list[str] | None = None
    """Only the lines of these tasks."""
    level: Level = "INFO"
    """The lowest level kept."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        rendered = ctx.render_task(self, ctx.variables(self, scope, record))
        assert isinstance(rendered, Fetch)
        current = _current(ctx, self, scope, record)
        execution = str(rendered.executionId or current["execution"])
        lowest = LEVELS.index(rendered.level)
        wanted = set(rendered.tasksId or [])
        rows = [
            {
                "executionId": execution,
                "taskId": line["task_id"],
                "timestamp": line["at"],
                "level": line["level"],
                "message": line["message"],
            }
            for line in ctx.coordinator.fetch_logs(execution)
            if _level(line["level"]) >= lowest and (not wanted or line["task_id"] in wanted)
        ]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "logs.ion"
            size = ion.write_file(path, rows)
            uri = ctx.storage.put(path, f"{self.id}.ion")
        return State.SUCCESS, {"uri": uri, "size": size}


def _level(level: str) -> int:
    try:
        return LEVELS.index(level.upper().replace("WARNING", "WARN"))
    except ValueError:
        raise TaskFailed(f"unknown log level {level!r}") from None
