"""Executions on the control plane: create them, start them, persist what the engine reports, kill and resume.

The engine (runner.engine) walks one execution; this module is its `Hooks`: the only code that writes task
runs, logs and execution states to SQLite. It also decides what must happen around a run: flow concurrency
(QUEUE, CANCEL, FAIL), runs of one trigger that must not overlap, subflows, Flow triggers fired by an
execution's end, and kill/resume requests that another process (`gitsync kill`) writes to the database.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gitsync.errors import GitSyncError
from gitsync.executions.recorder import SqliteHooks
from gitsync.flows.loader import load_flow_source
from gitsync.state import executions as execution_rows
from gitsync.state.database import Store, dumps, loads, now_iso
from gitsync.state.kv import SqliteKeyValue
from runner.engine.engine import (
    Engine,
    ExecutionOutcome,
    ExecutionRequest,
    Services,
    SubflowResult,
)
from runner.engine.executors import InlineExecutor, LocalExecutor, WorkerServices
from runner.expressions.renderer import Renderer, env_variables
from runner.flow import Flow
from runner.inputs import InputError, resolve_inputs
from runner.masking import Masker
from runner.registry import Registry, default_registry
from runner.states import State
from runner.storage import LocalStorage

log = logging.getLogger("gitsync.runs")

FLOW_TRIGGER_TYPES = frozenset({"io.kestra.plugin.core.trigger.Flow"})
WEBHOOK_TRIGGER_TYPES = frozenset({"io.kestra.plugin.core.trigger.Webhook"})
_POLL = 0.2
Progress = Callable[[str, Any], None]


class RunError(GitSyncError):
    """An execution cannot be created or acted on; the message says why."""


@dataclass(frozen=True)
class Created:
    id: str
    state: State


class RunManager:
    """Creates, starts and tracks executions for one state database."""

    @classmethod
    def from_settings(cls, store: Store, settings: Any, registry: Registry | None = None, **kwargs: Any) -> RunManager:
        from runner.expressions.renderer import load_secrets

        secrets = load_secrets(settings.secrets_file) if settings.secrets_file else None
        return cls(
            store,
            settings.data_path,
            registry,
            workers=settings.workers,
            secrets=secrets,
            allow_docker_fallback=settings.docker_fallback,
            status_sources=frozenset(s.name for s in settings.sources if s.status is not None),
            **kwargs,
        )

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        registry: Registry | None = None,
        workers: int = 32,
        progress: Progress | None = None,
        secrets: dict[str, str] | None = None,
        allow_docker_fallback: bool = False,
        status_sources: frozenset[str] | None = None,
    ) -> None:
        self.store = store
        self.status_sources = status_sources
        """Sources whose executions report a commit status (None: every source, e.g. in tests)."""
        self.data_dir = Path(data_dir).resolve()  # task working directories must not depend on a process's cwd
        self.registry = registry or default_registry()
        self.progress = progress
        self.masker = Masker()
        self.renderer = Renderer(masker=self.masker, secrets=secrets or {})
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.kv = SqliteKeyValue(self.data_dir / "kv.db")
        worker = WorkerServices(self.registry, self.data_dir, self.kv, self.masker.values, allow_docker_fallback)
        self.executor = LocalExecutor(worker, workers)
        hooks = SqliteHooks(self)
        self.engine = Engine(
            Services(
                renderer=self.renderer,
                executor=self.executor,
                inline_executor=InlineExecutor(worker),
                recorder=hooks,
                coordinator=hooks,
                storage_for=self._storage,
                kv=self.kv,
                masker=self.masker,
                data_dir=self.data_dir,
                env=dict(os.environ),
                envs=env_variables(os.environ),
            )
        )
        self._flows: dict[tuple[str, int], Flow] = {}
        self._unsynced: dict[str, Flow] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._watched: dict[str, threading.Event] = {}
        self._watcher: threading.Thread | None = None
        self._watch_lock = threading.Lock()

    # -- creating -----------------------------------------------------------------------------------------------

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
        row = self.store.query_one(
            "SELECT revision, commit_sha, source, disabled FROM flows WHERE uid = ?", (flow_uid,)
        )
        if row is None:
            raise RunError(f"no active flow '{flow_uid}' (see `gitsync flows`)")
        if row["disabled"] and parent is None:
            raise RunError(f"flow '{flow_uid}' is disabled")
        wanted = revision or row["revision"]
        flow = self.flow(flow_uid, wanted)
        commit = row["commit_sha"] if wanted == row["revision"] else self._revision_commit(flow_uid, wanted)
        resolved = self._inputs(flow, inputs or {})
        return self._insert(flow, wanted, commit, resolved, labels, trigger, trigger_uid, parent, row["source"])

    def create_unsynced(self, flow: Flow, inputs: dict[str, Any] | None = None) -> str:
        """An execution of a flow read from a file, not from git (`gitsync run --file`): revision 0, no commit."""
        resolved = self._inputs(flow, inputs or {})
        execution_id = self._insert(flow, 0, "", resolved, None, None, None, None, None)
        self._unsynced[execution_id] = flow
        return execution_id

    def _insert(
        self,
        flow: Flow,
        revision: int,
        commit: str,
        inputs: dict[str, Any],
        labels: dict[str, str] | None,
        trigger: dict[str, Any] | None,
        trigger_uid: str | None,
        parent: str | None,
        source: str | None,
    ) -> str:
        execution_id = execution_rows.new_execution_id()
        with self.store.atomic() as conn:
            conn.execute(
                """INSERT INTO executions (id, flow_uid, revision, commit_sha, state, trigger_uid, created_at, inputs,
                                           labels, trigger_vars, source, parent_execution)
                   VALUES (?, ?, ?, ?, 'CREATED', ?, ?, ?, ?, ?, ?, ?)""",
                (
                    execution_id,
                    flow.uid,
                    revision,
                    commit,
                    trigger_uid,
                    now_iso(),
                    dumps(inputs),
                    dumps(labels or {}),
                    dumps(trigger or {}),
                    source,
                    parent,
                ),
            )
        return execution_id

    def _inputs(self, flow: Flow, given: dict[str, Any]) -> dict[str, Any]:
        variables = {"flow": {"id": flow.id, "namespace": flow.namespace}, "envs": env_variables(os.environ)}
        try:
            return resolve_inputs(flow.inputs, given, lambda text: self.renderer.render_value(text, variables))
        except InputError as exc:
            raise RunError(f"flow '{flow.uid}': " + "; ".join(exc.problems)) from None

    def flow(self, flow_uid: str, revision: int) -> Flow:
        """The flow as that revision defined it (parsed from the revision's YAML, cached)."""
        key = (flow_uid, revision)
        cached = self._flows.get(key)
        if cached is not None:
            return cached
        row = self.store.query_one(
            "SELECT path, text FROM revisions WHERE uid = ? AND revision = ? AND deleted = 0", (flow_uid, revision)
        )
        if row is None or row["text"] is None:
            raise RunError(f"flow '{flow_uid}' has no revision {revision}")
        loaded = load_flow_source(row["path"], row["text"].encode(), self.registry)
        if loaded.flow is None:
            raise RunError(f"revision {revision} of '{flow_uid}' no longer loads: {loaded.errors[0].format()}")
        self._flows[key] = loaded.flow
        return loaded.flow

    def _revision_commit(self, flow_uid: str, revision: int) -> str:
        row = self.store.query_one(
            "SELECT commit_sha FROM revisions WHERE uid = ? AND revision = ?", (flow_uid, revision)
        )
        return row["commit_sha"] if row else ""

    # -- running ------------------------------------------------------------------------------------------------

    def start(self, execution_id: str) -> None:
        """Run the execution on a thread of its own (unless flow concurrency or trigger overlap queues it)."""
        with self._lock:
            if execution_id in self._threads or self._closing:
                return  # after shutdown() a CREATED execution stays CREATED: the next process starts it
            event = self._cancel.setdefault(execution_id, threading.Event())
            thread = threading.Thread(
                target=self._run_guarded, args=(execution_id, event), daemon=True, name=f"execution-{execution_id}"
            )
            self._threads[execution_id] = thread
        thread.start()

    def run(self, execution_id: str, cancelled: threading.Event | None = None) -> ExecutionOutcome | None:
        """Run the execution on the calling thread; None when it was queued, cancelled or refused instead."""
        event = cancelled or self._cancel.setdefault(execution_id, threading.Event())
        self._cancel[execution_id] = event
        try:
            return self._run(execution_id, event)
        finally:
            self._cancel.pop(execution_id, None)

    def _run_guarded(self, execution_id: str, event: threading.Event) -> None:
        try:
            self._run(execution_id, event)
        except Exception:  # an engine bug must not leave the execution RUNNING
            log.exception("execution %s crashed", execution_id)
            self._finish(execution_id, State.FAILED, error="internal error; see the logs")
        finally:
            with self._lock:
                self._threads.pop(execution_id, None)
                self._cancel.pop(execution_id, None)

    def _run(self, execution_id: str, event: threading.Event) -> ExecutionOutcome | None:
        row = self.store.query_one("SELECT * FROM executions WHERE id = ?", (execution_id,))
        if row is None:
            raise RunError(f"no execution {execution_id!r}")
        if State(row["state"]).is_terminal:
            return None
        flow = self._unsynced.get(execution_id) or self.flow(row["flow_uid"], row["revision"])
        if self._admit(row, flow) is not None:
            return None
        request = ExecutionRequest(
            id=execution_id,
            flow=flow,
            revision=row["revision"],
            commit=row["commit_sha"],
            inputs=loads(row["inputs"]) or {},
            labels=loads(row["labels"]) or {},
            trigger=loads(row["trigger_vars"]) or None,
            created_at=datetime.fromisoformat(row["created_at"]),
        )
        self._watch(execution_id, event)
        try:
            outcome = self.engine.run(request, event)
        finally:
            self._unwatch(execution_id)
        self._after(execution_id, flow, request, outcome)
        return outcome

    def _admit(self, row: dict[str, Any], flow: Flow) -> State | None:
        """Flow concurrency and trigger overlap: None to run now, else the state the execution was given."""
        with self.store.atomic() as conn:
            if row["trigger_uid"]:
                earlier = conn.execute(
                    """SELECT 1 FROM executions WHERE trigger_uid = ? AND id < ? AND state IN
                       ('CREATED','QUEUED','RUNNING','PAUSED','KILLING','RETRYING','RESTARTED') LIMIT 1""",
                    (row["trigger_uid"], row["id"]),
                ).fetchone()
                if earlier is not None:
                    conn.execute("UPDATE executions SET state = 'QUEUED' WHERE id = ?", (row["id"],))
                    return State.QUEUED
            concurrency = flow.concurrency
            if concurrency is not None:
                running = conn.execute(
                    "SELECT count(*) FROM executions WHERE flow_uid = ? AND state IN ('RUNNING','PAUSED') AND id != ?",
                    (flow.uid, row["id"]),
                ).fetchone()[0]
                if running >= concurrency.limit:
                    state = {"QUEUE": State.QUEUED, "CANCEL": State.CANCELLED, "FAIL": State.FAILED}[
                        concurrency.behavior.value
                    ]
                    ended = None if state == State.QUEUED else now_iso()
                    conn.execute(
                        "UPDATE executions SET state = ?, ended_at = ?, error = ? WHERE id = ?",
                        (state.value, ended, f"flow concurrency limit {concurrency.limit} reached", row["id"]),
                    )
                    return state
            conn.execute("UPDATE executions SET state = 'RUNNING', started_at = ? WHERE id = ?", (now_iso(), row["id"]))
        return None

    def _after(self, execution_id: str, flow: Flow, request: ExecutionRequest, outcome: ExecutionOutcome) -> None:
        if outcome.state == State.FAILED:
            self._retry_flow(execution_id, flow)
        self._release_queued(flow.uid)
        if not outcome.state.is_terminal:
            return
        try:
            self.fire_flow_triggers(flow, request, outcome)
        except Exception:  # a downstream trigger must not fail this execution
            log.exception("flow triggers after %s failed", execution_id)

    def _retry_flow(self, execution_id: str, flow: Flow) -> str | None:
        """Flow-level `retry` with behavior CREATE_NEW_EXECUTION: FAILED -> RETRIED and a new execution later."""
        retry = flow.retry
        if retry is None or retry.behavior.value != "CREATE_NEW_EXECUTION":
            return None
        row = self.store.query_one("SELECT * FROM executions WHERE id = ?", (execution_id,))
        if row is None or (retry.maxAttempts is not None and row["attempt"] >= retry.maxAttempts):
            return None
        new_id = execution_rows.new_execution_id()
        with self.store.atomic() as conn:
            conn.execute("UPDATE executions SET state = 'RETRIED' WHERE id = ?", (execution_id,))
            conn.execute(
                """INSERT INTO executions (id, flow_uid, revision, commit_sha, state, trigger_uid, created_at, inputs,
                                           labels, trigger_vars, source, parent_execution, original_id, attempt)
                   SELECT ?, flow_uid, revision, commit_sha, 'CREATED', NULL, ?, inputs, labels, trigger_vars, source,
                          parent_execution, coalesce(original_id, id), attempt + 1
                   FROM executions WHERE id = ?""",
                (new_id, now_iso(), execution_id),
            )
        if execution_id in self._unsynced:
            self._unsynced[new_id] = self._unsynced[execution_id]
        delay = getattr(retry, "interval", None) or getattr(retry, "minInterval", None)
        timer = threading.Timer(delay.total_seconds() if delay else 0.0, self.start, (new_id,))
        timer.daemon = True
        timer.start()
        return new_id

    def _release_queued(self, flow_uid: str) -> None:
        """Start the oldest queued execution of this flow (and of each trigger) that may now run."""
        rows = self.store.query(
            "SELECT id FROM executions WHERE flow_uid = ? AND state = 'QUEUED' ORDER BY id LIMIT 1", (flow_uid,)
        )
        for row in rows:
            with self.store.atomic() as conn:
                conn.execute("UPDATE executions SET state = 'CREATED' WHERE id = ? AND state = 'QUEUED'", (row["id"],))
            self.start(row["id"])

    def _finish(self, execution_id: str, state: State, error: str | None = None) -> None:
        with self.store.atomic() as conn:
            conn.execute(
                "UPDATE executions SET state = ?, ended_at = ?, error = coalesce(error, ?) WHERE id = ?",
                (state.value, now_iso(), error, execution_id),
            )

    def wait(self, execution_id: str, timeout: float | None = None) -> bool:
        thread = self._threads.get(execution_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def start_pending(self) -> list[str]:
        """Start every CREATED execution (fires recorded while no runner was there, e.g. before a restart)."""
        rows = self.store.query("SELECT id FROM executions WHERE state = 'CREATED' ORDER BY id")
        for row in rows:
            self.start(row["id"])
        return [row["id"] for row in rows]

    def shutdown(self) -> None:
        with self._lock:
            self._closing = True
        for event in list(self._cancel.values()):
            event.set()
        for thread in list(self._threads.values()):
            thread.join(timeout=15)
        self.executor.shutdown()

    # -- kill and resume (may come from another process, through the database) ----------------------------------

    def request_kill(self, execution_id: str) -> State:
        """Kill a running execution (its tasks are stopped) or cancel one that has not started."""
        with self.store.atomic() as conn:
            row = conn.execute("SELECT state FROM executions WHERE id = ?", (execution_id,)).fetchone()
            if row is None:
                raise RunError(f"no execution {execution_id!r}")
            state = State(row["state"])
            if state.is_terminal:
                raise RunError(f"execution {execution_id} already ended ({state.value})")
            if state in (State.CREATED, State.QUEUED):
                conn.execute(
                    "UPDATE executions SET state = 'KILLED', ended_at = ?, error = 'killed before it started' "
                    "WHERE id = ?",
                    (now_iso(), execution_id),
                )
                return State.KILLED
            conn.execute("UPDATE executions SET kill_requested = 1, state = 'KILLING' WHERE id = ?", (execution_id,))
        event = self._cancel.get(execution_id)
        if event is not None:
            event.set()
        return State.KILLING

    def request_resume(self, execution_id: str, inputs: dict[str, Any] | None = None) -> None:
        with self.store.atomic() as conn:
            row = conn.execute("SELECT state FROM executions WHERE id = ?", (execution_id,)).fetchone()
            if row is None:
                raise RunError(f"no execution {execution_id!r}")
            if row["state"] != State.PAUSED.value:
                raise RunError(f"execution {execution_id} is {row['state']}, not PAUSED")
            conn.execute("UPDATE executions SET resume_inputs = ? WHERE id = ?", (dumps(inputs or {}), execution_id))

    def _watch(self, execution_id: str, event: threading.Event) -> None:
        """Have the shared watcher turn a kill written to the database (by another process) into `event`."""
        with self._watch_lock:
            self._watched[execution_id] = event
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch_requests, daemon=True, name="kill-watcher")
                self._watcher.start()

    def _unwatch(self, execution_id: str) -> None:
        with self._watch_lock:
            self._watched.pop(execution_id, None)

    def _watch_requests(self) -> None:
        """One thread for every running execution: one query per poll, whatever their number; ends when none runs."""
        while True:
            time.sleep(_POLL)
            with self._watch_lock:
                if not self._watched:
                    self._watcher = None
                    return
                watched = dict(self._watched)
            for execution_id in self._kill_requested(list(watched)):
                watched[execution_id].set()
                self._unwatch(execution_id)

    def _kill_requested(self, execution_ids: list[str]) -> list[str]:
        """Those of the executions whose kill was requested, or whose row is gone."""
        found: dict[str, int] = {}
        for start in range(0, len(execution_ids), 500):
            chunk = execution_ids[start : start + 500]
            rows = self.store.query(
                f"SELECT id, kill_requested FROM executions WHERE id IN ({','.join('?' * len(chunk))})", tuple(chunk)
            )
            found.update((row["id"], row["kill_requested"]) for row in rows)
        return [execution_id for execution_id in execution_ids if found.get(execution_id, 1)]

    def wait_for_resume(self, execution_id: str, cancelled: threading.Event) -> dict[str, Any] | None:
        while not cancelled.wait(_POLL):
            row = self.store.query_one(
                "SELECT resume_inputs, kill_requested FROM executions WHERE id = ?", (execution_id,)
            )
            if row is None or row["kill_requested"]:
                return None
            if row["resume_inputs"] is not None:
                with self.store.atomic() as conn:
                    conn.execute("UPDATE executions SET resume_inputs = NULL WHERE id = ?", (execution_id,))
                return loads(row["resume_inputs"]) or {}
        return None

    # -- triggers that start runs -------------------------------------------------------------------------------

    def fire_flow_triggers(self, flow: Flow, request: ExecutionRequest, outcome: ExecutionOutcome) -> list[str]:
        """Start the flows whose Flow trigger matches this execution's end (KESTRA_SPEC §9.2)."""
        from gitsync.schedule.flow_triggers import matches

        started = []
        for row in self.store.query(
            f"""SELECT t.uid, t.flow_uid, t.spec FROM triggers t JOIN flows f ON f.uid = t.flow_uid
                WHERE t.type IN ({",".join("?" * len(FLOW_TRIGGER_TYPES))}) AND t.disabled = 0 AND t.paused = 0
                  AND f.disabled = 0""",
            tuple(FLOW_TRIGGER_TYPES),
        ):
            spec = loads(row["spec"]) or {}
            event = {
                "executionId": request.id,
                "namespace": flow.namespace,
                "flowId": flow.id,
                "flowRevision": request.revision,
                "state": outcome.state.value,
                "outputs": outcome.outputs,
                "labels": outcome.labels,
            }
            if row["flow_uid"] == flow.uid or not matches(spec, event, self.registry, self.renderer.evaluate):
                continue
            inputs = self.renderer.render_value(spec.get("inputs") or {}, {"trigger": event})
            try:
                execution_id = self.create(
                    row["flow_uid"], inputs, spec.get("labels"), trigger=event, trigger_uid=row["uid"]
                )
            except RunError as exc:
                log.warning("Flow trigger %s could not start: %s", row["uid"], exc)
                continue
            self.start(execution_id)
            started.append(execution_id)
        return started

    def webhook(self, namespace: str, flow_id: str, key: str, trigger: dict[str, Any]) -> str | None:
        """Create and start an execution for a Webhook trigger whose key matches; None when none does."""
        import hmac

        uid = f"{namespace}.{flow_id}"
        for row in self.store.query(
            f"""SELECT t.uid, t.spec FROM triggers t JOIN flows f ON f.uid = t.flow_uid
                WHERE t.flow_uid = ? AND t.type IN ({",".join("?" * len(WEBHOOK_TRIGGER_TYPES))})
                  AND t.disabled = 0 AND f.disabled = 0""",
            (uid, *WEBHOOK_TRIGGER_TYPES),
        ):
            spec = loads(row["spec"]) or {}
            expected = str(self.renderer.render_value(spec.get("key", ""), {"flow": {"namespace": namespace}}))
            if expected and hmac.compare_digest(expected.encode(), key.encode()):
                inputs = self.renderer.render_value(spec.get("inputs") or {}, {"trigger": trigger})
                execution_id = self.create(uid, inputs, spec.get("labels"), trigger=trigger, trigger_uid=None)
                self.start(execution_id)
                return execution_id
        return None

    # -- services for the engine --------------------------------------------------------------------------------

    def _storage(self, request: ExecutionRequest) -> LocalStorage:
        return LocalStorage(self.data_dir, request.flow.namespace, request.flow.id, request.id)

    def subflow(
        self,
        parent: ExecutionRequest,
        task: Any,
        inputs: dict[str, Any],
        labels: dict[str, str],
        cancelled: threading.Event,
    ) -> SubflowResult:
        uid = f"{task.namespace}.{task.flowId}"
        try:
            child = self.create(
                uid,
                inputs,
                labels,
                trigger={"executionId": parent.id},
                parent=parent.id,
                revision=task.revision if isinstance(task.revision, int) else None,
            )
        except RunError as exc:
            from runner.api import TaskFailed

            raise TaskFailed(str(exc)) from None
        if not task.wait:
            self.start(child)
            return SubflowResult(child, State.CREATED, {})
        outcome = self.run(child, cancelled)
        state = outcome.state if outcome else State(self.execution_state(child))
        return SubflowResult(child, state, outcome.outputs if outcome else {})

    def execution_state(self, execution_id: str) -> str:
        row = self.store.query_one("SELECT state FROM executions WHERE id = ?", (execution_id,))
        return row["state"] if row else "UNKNOWN"
