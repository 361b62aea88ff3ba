"""`Subflow`: start an execution of another flow."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError

from runner.api import TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.engine import validation_problems
from runner.engine.records import SubflowResult, TaskRunRecord
from runner.plugin import Task
from runner.states import State
from runner.types import Dyn, Expression, Labels


class Subflow(Task):
    """Create an execution of `namespace.flowId` and (by default) wait for it."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Subflow"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.Subflow", "io.kestra.core.tasks.flows.Flow")
    flowable: ClassVar[bool] = True  # the engine creates the child execution itself (DESIGN.md data path)
    retried_as_a_task: ClassVar[bool] = True  # its `retry` (or the flow's) retries it, as Kestra retries a Subflow

    namespace: str = Field(min_length=1)
    """Namespace of the flow to run; rendered."""
    flowId: str
    """Id of the flow to run; rendered."""
    revision: Dyn[Annotated[int, Field(ge=1)]] | None = None
    """Revision to run (the latest when unset)."""
    inputs: dict[str, Any] | None = None
    """Inputs of the child execution; rendered."""
    labels: Labels | Expression | None = None
    """Labels of the child execution."""
    wait: bool = True
    """Wait for the child execution to end before going on."""
    transmitFailed: bool = True
    """Fail this task when the child execution fails or is killed (only with wait)."""
    inheritLabels: Dyn[bool] = False
    """Copy this execution's labels to the child execution."""
    outputs: dict[str, Any] | None = None
    """Deprecated (0.15): outputs to extract from the child; declare flow outputs instead."""
    scheduleDate: datetime | str | None = None
    """Schedule the child execution at this date instead of now."""
    restartBehavior: Literal["RETRY_FAILED", "NEW_EXECUTION"] = "RETRY_FAILED"
    """On restart of a failed parent: restart the failed child, or create a new one."""

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        variables = ctx.variables(self, scope, record)
        rendered = self._rendered(ctx, variables)
        # the system labels (system.correlationId) always go down to the child; the others with inheritLabels
        labels = {k: v for k, v in ctx.labels.items() if rendered.inheritLabels or k.startswith("system.")}
        labels.update(rendered.labels or {})  # type: ignore[arg-type]  # validated to a map once rendered
        result = ctx.subflow(rendered, dict(rendered.inputs or {}), labels)
        outputs = {"executionId": result.execution_id, "state": result.state.value, "outputs": result.outputs}
        if not rendered.wait:
            return State.SUCCESS, outputs
        if self.outputs and not result.declares_outputs:
            outputs["outputs"] = self._extracted(ctx, variables, result, outputs)
        if result.state.is_failure and rendered.transmitFailed:
            raise TaskFailed(f"subflow execution {result.execution_id} ended {result.state.value}", outputs)
        return (State.WARNING if result.state == State.WARNING else State.SUCCESS), outputs

    def _rendered(self, ctx: FlowableContext, variables: dict[str, Any]) -> Subflow:
        """The task with its properties rendered, but for `outputs`: that map is read in the child's context."""
        raw = self.model_dump(by_alias=True, exclude_none=True, exclude={"runIf", "outputs"})
        try:
            return Subflow.model_validate(ctx.render(raw, variables))
        except ValidationError as exc:
            raise TaskFailed(f"rendered properties are invalid: {validation_problems(exc)}") from None

    def _extracted(
        self, ctx: FlowableContext, variables: dict[str, Any], result: SubflowResult, outputs: dict[str, Any]
    ) -> dict[str, Any]:
        """The deprecated `outputs` map (used when the child flow declares no outputs, as in Kestra), rendered with
        `outputs` meaning the child execution's task outputs."""
        child = {
            **variables,
            "outputs": result.task_outputs,
            "execution": {**variables.get("execution", {}), "id": result.execution_id, "state": result.state.value},
        }
        extracted: dict[str, Any] = {}
        for key, value in (self.outputs or {}).items():
            try:
                extracted[key] = ctx.render(value, child)
            except TaskFailed as exc:
                raise TaskFailed(
                    f"outputs.{key}: could not extract it from subflow execution {result.execution_id} "
                    f"(outputs.X here names the child's tasks): {exc.message}",
                    outputs,
                ) from None
        return extracted
