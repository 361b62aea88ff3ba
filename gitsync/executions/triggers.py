"""Triggers that start executions from the control plane: Flow triggers (another execution ended, KESTRA_SPEC
§9.2) and Webhook triggers (an HTTP request carrying the trigger's key)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

from gitsync.executions.creation import ExecutionFactory
from gitsync.executions.errors import RunError
from gitsync.state import executions as execution_rows
from runner.engine.engine import ExecutionOutcome, ExecutionRequest
from runner.expressions.renderer import Renderer, RenderError
from runner.flow import Flow

log = logging.getLogger("gitsync.runs")

FLOW_TRIGGER_TYPES = frozenset({"io.kestra.plugin.core.trigger.Flow"})
WEBHOOK_TRIGGER_TYPES = frozenset({"io.kestra.plugin.core.trigger.Webhook"})


class TriggerStarts:
    """Creates and starts the executions that Flow and Webhook triggers ask for."""

    def __init__(self, factory: ExecutionFactory, renderer: Renderer, start: Callable[[str], None]) -> None:
        self.factory = factory
        self.store = factory.store
        self.renderer = renderer
        self.start = start

    def fire_flow_triggers(self, flow: Flow, request: ExecutionRequest, outcome: ExecutionOutcome) -> list[str]:
        """Start the flows whose Flow trigger matches this execution's end (KESTRA_SPEC §9.2)."""
        from gitsync.schedule.flow_triggers import matches

        started = []
        for row in execution_rows.flow_triggers(self.store, FLOW_TRIGGER_TYPES):
            spec = row["spec"]
            event = {
                "executionId": request.id,
                "namespace": flow.namespace,
                "flowId": flow.id,
                "flowRevision": request.revision,
                "state": outcome.state.value,
                "outputs": outcome.outputs,
                "labels": outcome.labels,
            }
            if row["flow_uid"] == flow.uid or not matches(spec, event, self.factory.registry, self.renderer.evaluate):
                continue
            inputs = self.renderer.render_value(spec.get("inputs") or {}, {"trigger": event})
            try:
                execution_id = self.factory.create(
                    row["flow_uid"], inputs, spec.get("labels"), trigger=event, trigger_uid=row["uid"]
                )
            except RunError as exc:
                log.warning("Flow trigger %s could not start: %s", row["uid"], exc)
                continue
            self.start(execution_id)
            started.append(execution_id)
        return started

    def webhook_spec(self, namespace: str, flow_id: str, key: str) -> dict[str, Any] | None:
        """The spec of the flow's enabled Webhook trigger whose key this is (compared in constant time); None when
        no trigger has it. The HTTP route asks this before it reads a body."""
        for row in execution_rows.webhook_triggers(self.store, f"{namespace}.{flow_id}", WEBHOOK_TRIGGER_TYPES):
            spec: dict[str, Any] = row["spec"]
            try:
                expected = str(self.renderer.render_value(spec.get("key", ""), {"flow": {"namespace": namespace}}))
            except RenderError as exc:  # e.g. its secret is not set: no request can match it (the caller sees a 404)
                log.warning(
                    "%s.%s: the key of Webhook trigger '%s' cannot be rendered, so no request can start the flow: %s",
                    namespace,
                    flow_id,
                    spec.get("id"),
                    exc,
                )
                continue
            if expected and hmac.compare_digest(expected.encode(), key.encode("utf-8", "replace")):
                return spec
        return None

    def webhook(self, namespace: str, flow_id: str, key: str, trigger: dict[str, Any]) -> str | None:
        """Create and start an execution for a Webhook trigger whose key matches; None when none does."""
        spec = self.webhook_spec(namespace, flow_id, key)
        if spec is None:
            return None
        inputs = self.renderer.render_value(spec.get("inputs") or {}, {"trigger": trigger})
        uid = f"{namespace}.{flow_id}"
        execution_id = self.factory.create(uid, inputs, spec.get("labels"), trigger=trigger, trigger_uid=None)
        self.start(execution_id)
        return execution_id
