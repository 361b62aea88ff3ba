"""Resolving what a gone owner left: at start and every few seconds, in every process that runs executions.

An execution is resolved only when the process that owns it is gone (`ownership.Lease.gone`): never a live
`gitsync run` beside a daemon, never this process's own. A lost execution whose flow retries as a new execution
(`retry.behavior: CREATE_NEW_EXECUTION`, attempts left) gets that retry, started or handed to the daemon like any
other; otherwise it is FAILED "worker lost" (KILLED when a kill was under way). Queued executions of its flow
may then start.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from gitsync.errors import GitSyncError, StateError
from gitsync.executions.creation import ExecutionFactory
from gitsync.executions.ownership import Lease
from gitsync.executions.running import ExecutionRunner
from gitsync.state import executions as execution_rows
from gitsync.state import lost as lost_rows
from gitsync.state.owners import describe
from runner.states import State

log = logging.getLogger("gitsync.runs")

SWEEP_SECONDS = 2.0
"""How often a process that runs executions looks for gone owners (one small query when there are none)."""


class Recovery:
    def __init__(
        self, lease: Lease, factory: ExecutionFactory, runner: ExecutionRunner, reporting: frozenset[str] | None
    ) -> None:
        self.lease = lease
        self.reporting = reporting
        """Sources whose executions post a commit status (None: every source)."""
        self.store = factory.store
        self.factory = factory
        self.runner = runner

    def sweep(self) -> list[dict[str, Any]]:
        """Resolve the executions of every owner that is gone; the executions resolved (id, flow_uid, state)."""
        try:
            gone = self.lease.gone()
            resolved = lost_rows.resolve_lost(self.store, self.lease.id, gone, datetime.now(UTC), self.reporting)
        except StateError as exc:
            log.warning("could not look for executions left by stopped processes: %s", exc)
            return []
        for owner in gone:
            log.info("%s is gone; resolving what it left", describe(owner))
        for row in resolved:
            retried = self._retry(row) if row["state"] is State.FAILED else None
            tail = f"; retried as execution {retried}" if retried else ""
            log.warning("execution %s of %s: %s%s", row["id"], row["flow_uid"], row["error"], tail)
        for flow_uid in sorted({row["flow_uid"] for row in resolved}):
            self.runner.release_queued(flow_uid)
        return resolved

    def _retry(self, row: dict[str, Any]) -> str | None:
        execution = execution_rows.get_execution(self.store, row["id"])
        if execution is None or not execution["revision"]:
            return None  # a `gitsync run --file` flow: nothing else can read it again
        try:
            flow = self.factory.flow_of(execution)
        except GitSyncError as exc:
            log.warning("execution %s cannot be retried: %s", row["id"], exc)
            return None
        return self.runner.retry_flow(row["id"], flow)
