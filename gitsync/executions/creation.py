"""Creating executions: the flow revision they pin, their inputs checked, and flows run from a file (unsynced)."""

from __future__ import annotations

import os
from typing import Any

from gitsync.executions.errors import RunError
from gitsync.flows.loader import load_flow_source
from gitsync.state import executions as execution_rows
from gitsync.state.database import Store
from runner.expressions.renderer import Renderer, env_variables
from runner.flow import Flow
from runner.inputs import InputError, resolve_inputs
from runner.registry import Registry


class ExecutionFactory:
    """Writes new CREATED executions and knows the flow each one runs (parsed once per revision)."""

    def __init__(self, store: Store, registry: Registry, renderer: Renderer) -> None:
        self.store = store
        self.registry = registry
        self.renderer = renderer
        self._flows: dict[tuple[str, int], Flow] = {}
        self._unsynced: dict[str, Flow] = {}

    def create(
        self,
        flow_uid: str,
        inputs: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        trigger: dict[str, Any] | None = None,
        trigger_uid: str | None = None,
        parent: str | None = None,
        revision: int | None = None,
    ) -> str:
        """A new execution of the flow's active revision (or `revision`); inputs are checked now."""
        row = execution_rows.active_flow(self.store, flow_uid)
        if row is None:
            raise RunError(f"no active flow '{flow_uid}' (see `gitsync flows`)")
        if row["disabled"] and parent is None:
            raise RunError(f"flow '{flow_uid}' is disabled")
        wanted = revision or row["revision"]
        flow = self.flow(flow_uid, wanted)
        if wanted == row["revision"]:
            commit = row["commit_sha"]
        else:
            commit = execution_rows.revision_commit(self.store, flow_uid, wanted)
        return execution_rows.create_execution(
            self.store,
            flow_uid=flow.uid,
            revision=wanted,
            commit=commit,
            inputs=self._inputs(flow, inputs or {}),
            labels=labels,
            trigger=trigger,
            trigger_uid=trigger_uid,
            parent=parent,
            source=row["source"],
        )

    def create_unsynced(self, flow: Flow, inputs: dict[str, Any] | None = None) -> str:
        """An execution of a flow read from a file, not from git (`gitsync run --file`): revision 0, no commit."""
        resolved = self._inputs(flow, inputs or {})
        execution_id = execution_rows.create_execution(
            self.store, flow_uid=flow.uid, revision=0, commit="", inputs=resolved
        )
        self._unsynced[execution_id] = flow
        return execution_id

    def flow(self, flow_uid: str, revision: int) -> Flow:
        """The flow as that revision defined it (parsed from the revision's YAML, cached)."""
        key = (flow_uid, revision)
        cached = self._flows.get(key)
        if cached is not None:
            return cached
        row = execution_rows.revision_source(self.store, flow_uid, revision)
        if row is None or row["text"] is None:
            raise RunError(f"flow '{flow_uid}' has no revision {revision}")
        loaded = load_flow_source(row["path"], row["text"].encode(), self.registry)
        if loaded.flow is None:
            raise RunError(f"revision {revision} of '{flow_uid}' no longer loads: {loaded.errors[0].format()}")
        self._flows[key] = loaded.flow
        return loaded.flow

    def flow_of(self, execution: dict[str, Any]) -> Flow:
        """The flow an execution row runs: its unsynced flow, else its revision's."""
        unsynced = self._unsynced.get(execution["id"])
        return unsynced or self.flow(execution["flow_uid"], execution["revision"])

    def carry_over(self, execution_id: str, new_id: str) -> None:
        """A retry of an unsynced execution runs the same flow."""
        if execution_id in self._unsynced:
            self._unsynced[new_id] = self._unsynced[execution_id]

    def _inputs(self, flow: Flow, given: dict[str, Any]) -> dict[str, Any]:
        variables = {"flow": {"id": flow.id, "namespace": flow.namespace}, "envs": env_variables(os.environ)}
        try:
            return resolve_inputs(flow.inputs, given, lambda text: self.renderer.render_value(text, variables))
        except InputError as exc:
            raise RunError(f"flow '{flow.uid}': " + "; ".join(exc.problems)) from None
