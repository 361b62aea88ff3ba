"""Triggers that start executions from the control plane: Flow triggers (another execution ended, KESTRA_SPEC
§9.2) and Webhook triggers (an HTTP request carrying the trigger's key)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gitsync.executions.creation import ExecutionFactory
from gitsync.executions.errors import RunError
from gitsync.schedule.conditions import ConditionError, ScheduleConditions
from gitsync.schedule.flow_triggers import judge
from gitsync.state import executions as execution_rows
from gitsync.state import task_runs as task_run_rows
from gitsync.state import trigger_windows
from runner.engine.engine import ExecutionOutcome, ExecutionRequest
from runner.flow import Flow

if TYPE_CHECKING:
    from runner.expressions.lazy import Rendering

log = logging.getLogger("gitsync.runs")

FLOW_TRIGGER_TYPES = frozenset({"io.kestra.plugin.core.trigger.Flow"})
WEBHOOK_TRIGGER_TYPES = frozenset({"io.kestra.plugin.core.trigger.Webhook"})
WEBHOOK_SKIPPED = ""
"""What `webhook` returns for a call the trigger's conditions refuse: no execution (HTTP 204)."""


class TriggerStarts:
    """Creates and starts the executions that Flow and Webhook triggers ask for."""

    def __init__(self, factory: ExecutionFactory, renderer: Rendering, start: Callable[[str], None]) -> None:
        self.factory = factory
        self.store = factory.store
        self.renderer = renderer
        self.start = start

    def fire_flow_triggers(
        self, flow: Flow, request: ExecutionRequest, outcome: ExecutionOutcome, now: datetime | None = None
    ) -> list[str]:
        """Start the flows whose Flow trigger this execution's end fires (KESTRA_SPEC §9.2): its states, `when` and
        conditions hold, and every window of its preconditions / MultipleCondition is complete (the marks are
        kept in SQLite, `state.trigger_windows`). A flow never triggers itself."""
        from runner.expressions.renderer import RenderError  # an execution ran: what renders is imported

        triggers = execution_rows.flow_triggers(self.store, FLOW_TRIGGER_TYPES)
        rows = [row for row in triggers if row["flow_uid"] != flow.uid]
        if not rows:
            return []
        at = now or datetime.now(UTC)
        upstream = {
            "executionId": request.id,
            "namespace": flow.namespace,
            "flowId": flow.id,
            "flowRevision": request.revision,
            "state": outcome.state.value,
            "outputs": outcome.outputs,
            "labels": outcome.labels,
            "retriedAttemptStates": [],
        }
        if any("etryAttempt" in json.dumps(row["spec"]) for row in rows):  # HasRetryAttempt, `hasRetryAttempt`
            upstream["retriedAttemptStates"] = _retried_attempt_states(task_run_rows.task_runs(self.store, request.id))
        started = []
        for row in rows:
            spec = row["spec"]
            namespace, _, flow_id = row["flow_uid"].rpartition(".")
            event = {**upstream, "listening": {"namespace": namespace, "flowId": flow_id}}
            judged = judge(spec, event, self.factory.registry, self.renderer.evaluate)
            if not judged.passes:
                log.debug("Flow trigger %s does not fire after %s: %s", row["uid"], request.id, judged.reason)
                continue
            if judged.windows:
                complete = trigger_windows.settle(self.store, row["uid"], judged.windows, at, request.id)
                if not (complete and judged.contributes):
                    continue
            trigger = {k: v for k, v in upstream.items() if k != "retriedAttemptStates"}
            try:
                inputs = self.renderer.render_value(spec.get("inputs") or {}, {"trigger": trigger})
                execution_id = self.factory.create(
                    row["flow_uid"], inputs, spec.get("labels"), trigger=trigger, trigger_uid=row["uid"], kind="flow"
                )
            except (RunError, RenderError) as exc:
                log.warning("Flow trigger %s could not start: %s", row["uid"], exc)
                continue
            self.start(execution_id)
            started.append(execution_id)
        return started

    def webhook_spec(self, namespace: str, flow_id: str, key: str) -> dict[str, Any] | None:
        """The spec of the flow's enabled Webhook trigger whose key this is (compared in constant time); None when
        no trigger has it. The HTTP route asks this before it reads a body.

        A key that cannot be rendered (it reads a secret that is not set, say) matches no call; when no other
        trigger of the flow matched either, `RunError` says which key could not be rendered and why."""
        from runner.expressions.renderer import RenderError  # imported with the renderer, on its first use

        uid = f"{namespace}.{flow_id}"
        unrendered: list[str] = []
        for row in execution_rows.webhook_triggers(self.store, uid, WEBHOOK_TRIGGER_TYPES):
            spec: dict[str, Any] = row["spec"]
            try:
                expected = str(self.renderer.render_value(spec.get("key", ""), {"flow": {"namespace": namespace}}))
            except RenderError as exc:
                trigger_id = row["uid"].rpartition("/")[2]
                why = f"the key of Webhook trigger {trigger_id!r} cannot be rendered, so no call can match it"
                unrendered.append(f"{why}: {exc}")
                continue
            if expected and hmac.compare_digest(expected.encode(), key.encode("utf-8", "replace")):
                return spec
        if unrendered:
            raise RunError(self.renderer.masker.mask(f"flow {uid}: " + "; ".join(unrendered)))
        return None

    def webhook(self, namespace: str, flow_id: str, key: str, trigger: dict[str, Any]) -> str | None:
        """Create and start an execution for a Webhook trigger whose key matches; None when none does, and
        `WEBHOOK_SKIPPED` when its conditions or `when` refuse the call (Kestra answers 204), or cannot judge it
        (said in the log)."""
        spec = self.webhook_spec(namespace, flow_id, key)
        if spec is None:
            return None
        judge = ScheduleConditions(self.factory.registry, self.renderer.evaluate)
        if judge.applies(spec):
            try:
                accepted = judge.accepts(spec, trigger, schedule=False)
            except ConditionError as exc:
                log.warning("Webhook trigger of %s.%s did not start the flow: %s", namespace, flow_id, exc)
                accepted = False
            if not accepted:
                return WEBHOOK_SKIPPED
        inputs = self.renderer.render_value(spec.get("inputs") or {}, {"trigger": trigger})
        uid = f"{namespace}.{flow_id}"
        execution_id = self.factory.create(
            uid, inputs, spec.get("labels"), trigger=trigger, trigger_uid=None, kind="webhook"
        )
        self.start(execution_id)
        return execution_id


def _retried_attempt_states(task_runs: Iterable[dict[str, Any]]) -> list[str]:
    """The state of every attempt of the task runs that were retried (HasRetryAttempt), as Kestra names an
    attempt's state: an attempt that failed and was retried is recorded RETRIED here and is FAILED there."""
    attempts: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for run in task_runs:
        attempts.setdefault((run["task_id"], run["value"]), []).append(run)
    retried = [run for runs in attempts.values() if max(r["attempt"] for r in runs) > 1 for run in runs]
    return ["FAILED" if run["state"] == "RETRIED" else run["state"] for run in retried]
