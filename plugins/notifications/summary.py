"""The `*Execution` tasks' shared part: which execution they report on (`executionId`, `customFields`,
`customMessage`, Kestra's `ExecutionInterface`) and what of it they report (Kestra's `ExecutionService.executionMap`).

The engine puts the execution in `RunContext.execution` (`Task.reads_execution`): its own, still RUNNING, with the
task runs so far, or the one `executionId` names (`{{ trigger.executionId }}` in a flow a Flow trigger starts, as
Kestra's examples do), as recorded. As Kestra does, `lastTask` is the last task run (of another execution: the last
one in its final state, FAILED or SUCCESS) and `firstFailed` is that task run when it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from plugins.core._props import as_map
from plugins.values import StrMap
from runner.api import ExecutionView, RunContext, TaskFailed, TaskRunView
from runner.plugin import Task


class ExecutionFields(Task):
    """Kestra's `ExecutionInterface`: the execution reported on, and what the author adds to the message."""

    reads_execution: ClassVar[bool] = True

    executionId: str | None = None
    """The execution to report on; default: the current one. In a flow started by a Flow trigger, use
    `{{ trigger.executionId }}` to report on the execution that triggered it."""
    customFields: StrMap | None = None
    """Extra fields shown in the message (name: value)."""
    customMessage: str | None = None
    """Extra text shown in the message."""

    def summary(self, ctx: RunContext) -> Summary:
        """What the message says of the execution; TaskFailed when the engine gave none."""
        if ctx.execution is None:
            raise TaskFailed("this task reports on an execution, but none was given to it", permanent=True)
        fields = {str(k): v for k, v in as_map(self.customFields, "customFields").items()}
        return Summary.of(ctx.execution, fields, self.customMessage)


@dataclass(frozen=True)
class Summary:
    """One execution as a notification message shows it."""

    execution: ExecutionView
    duration: str
    """Kestra's `humanDuration`: HH:mm:ss.SSS."""
    last_task: TaskRunView | None
    first_failed: TaskRunView | None
    custom_fields: dict[str, Any]
    custom_message: str | None

    @classmethod
    def of(cls, execution: ExecutionView, fields: dict[str, Any], message: str | None) -> Summary:
        runs = list(execution.task_runs)
        if not execution.current:
            final = "FAILED" if execution.state == "FAILED" else "SUCCESS"
            runs = [run for run in runs if run.state == final]
        last = runs[-1] if runs else None
        failed = last if last is not None and last.state == "FAILED" else None
        return cls(execution, human_duration(execution), last, failed, fields, message or None)

    @property
    def title(self) -> str:
        """`[namespace] flow ➛ STATE`, as Kestra's templates title a message."""
        return f"[{self.execution.namespace}] {self.execution.flow_id} ➛ {self.execution.state}"

    @property
    def outcome(self) -> str:
        """`Succeeded after …` or `Failed on task `x` after …`."""
        if self.first_failed is not None:
            return f"Failed on task `{self.first_failed.task_id}` after {self.duration}"
        return f"Succeeded after {self.duration}"

    @property
    def final_task(self) -> str:
        return self.last_task.task_id if self.last_task is not None else ""

    def facts(self) -> list[tuple[str, str]]:
        """The named values every template lists, then the custom fields."""
        execution = self.execution
        facts = [
            ("Namespace", execution.namespace),
            ("Flow ID", execution.flow_id),
            ("Execution ID", execution.id),
            ("Execution Status", execution.state),
        ]
        facts.extend((name, text(value)) for name, value in self.custom_fields.items())
        facts.append(("Final task ID", self.final_task))
        return facts

    def started(self) -> datetime:
        return moment(self.execution.started_at) or datetime.now(UTC)


def human_duration(execution: ExecutionView) -> str:
    """From its start to its end (to now while it runs) as HH:mm:ss.SSS."""
    start = moment(execution.started_at) or datetime.now(UTC)
    end = moment(execution.ended_at) or datetime.now(UTC)
    millis = max(0, int((end - start).total_seconds() * 1000))
    seconds, ms = divmod(millis, 1000)
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"{hours:02d}:{m:02d}:{s:02d}.{ms:03d}"


def moment(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
