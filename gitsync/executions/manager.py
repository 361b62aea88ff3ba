"""Executions on the control plane, behind one facade: create them, start them, kill and resume them.

The engine (runner.engine) walks one execution; the parts around it each live in their own module:
`creation` (the revision an execution pins, its inputs), `replays` (a new execution run again from a task run of
an ended one), `running` (threads, flow concurrency, retries, queued executions), `control` (kill and resume
requests, also from another process), `recorder` (the engine's `Recorder`: task runs, states and logs in SQLite),
`coordinator` (the engine's `Coordinator`: subflows, resume) and `triggers` (Flow and Webhook triggers).
`RunManager` builds them for one state database and is what the CLI, the daemon and the HTTP routes call.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitsync.executions.control import ControlRequests
from gitsync.executions.coordinator import ExecutionCoordinator
from gitsync.executions.creation import ExecutionFactory
from gitsync.executions.errors import RunError
from gitsync.executions.ownership import Lease
from gitsync.executions.recorder import Progress, SqliteRecorder
from gitsync.executions.recovery import SWEEP_SECONDS, Recovery
from gitsync.executions.replays import Replays
from gitsync.executions.running import ExecutionRunner
from gitsync.executions.triggers import FLOW_TRIGGER_TYPES, WEBHOOK_TRIGGER_TYPES, TriggerStarts
from gitsync.state import executions as execution_rows
from gitsync.state.database import Store
from gitsync.state.executions import TriggerKind
from runner.api import KeyValue
from runner.engine.engine import (
    Engine,
    ExecutionOutcome,
    ExecutionRequest,
    Services,
)
from runner.engine.invocation import Executor
from runner.expressions.variables import env_variables
from runner.flow import Flow
from runner.masking import Masker
from runner.registry import Registry
from runner.states import State
from runner.storage import LocalStorage

if TYPE_CHECKING:
    from runner.expressions.lazy import Rendering

__all__ = [
    "FLOW_TRIGGER_TYPES",
    "WEBHOOK_TRIGGER_TYPES",
    "Progress",
    "RunError",
    "RunManager",
    "RunServices",
    "task_environment",
]


@dataclass(frozen=True)
class RunServices:
    """The services executions use, built once per process by the composition root (`gitsync.compose`)."""

    registry: Registry
    renderer: Rendering
    """`gitsync.compose` gives a `LazyRenderer`: the `Renderer` is built when something first renders."""
    masker: Masker
    kv: KeyValue
    executor: Executor
    """Runs the runnable tasks that go to a worker (the local pool, or Celery)."""
    inline_executor: Executor
    """Runs the tasks that only compute (`runs_inline`) on the engine's thread."""
    data_dir: Path
    """Absolute: task working directories must not depend on a process's working directory."""
    env: Mapping[str, str] = field(default_factory=dict)
    """The process environment that `{{ envs.x }}` reads (`ENV_*` variables). Tasks never get it whole."""
    task_env: Mapping[str, str] | None = None
    """The environment task processes start from (before the task's own `env`); None: `task_environment(env)`,
    the clean base without an allow-list."""
    ui_url: str | None = None
    """The web UI's public address (`http.public_url`), which notification tasks link executions to."""


TASK_ENV_BASE = ("PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_*")
"""What every task process gets of the gitsync process's environment (the locale, time zone, paths)."""


SERVICE_PYTHON_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
"""What points a Python at gitsync's own environment: never given to a task, whatever the allow-list says."""


def task_environment(environ: Mapping[str, str], allow: Sequence[str] = ()) -> dict[str, str]:
    """The clean environment tasks start from: the variables of `environ` that `TASK_ENV_BASE` or the allow-list
    (`tasks.env_allow`: names, or `PREFIX_*` patterns) name. Nothing else of the service's environment (its API
    token, host tokens, SECRET_* values) reaches a task process, nor its own Python environment: the folders of
    gitsync's virtual environment are taken off PATH and `SERVICE_PYTHON_ENV` is dropped, so that a task's
    `pip install` cannot change the service (script tasks use an environment of their own)."""
    patterns = (*TASK_ENV_BASE, *allow)
    clean = {
        name: value
        for name, value in environ.items()
        if name not in SERVICE_PYTHON_ENV and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }
    if "PATH" in clean:
        own = _service_bin_folders(environ)
        clean["PATH"] = os.pathsep.join(
            part for part in clean["PATH"].split(os.pathsep) if part and _folder(part) not in own
        )
    return clean


def _folder(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _service_bin_folders(environ: Mapping[str, str]) -> set[str]:
    """The executable folders of the virtual environment gitsync runs in (and of an activated one)."""
    prefixes = [sys.prefix] if sys.prefix != sys.base_prefix else []
    if environ.get("VIRTUAL_ENV"):
        prefixes.append(environ["VIRTUAL_ENV"])
    folders = {_folder(os.path.join(prefix, "bin")) for prefix in prefixes}
    if sys.prefix != sys.base_prefix:
        folders.add(_folder(os.path.dirname(sys.executable)))
    return folders


class RunManager:
    """Creates, starts and tracks executions for one state database.

    It wires its own parts (factory, runner, control requests, recorder, coordinator, triggers) around one
    engine; every service that configuration chooses comes in `services`.
    """

    def __init__(
        self,
        store: Store,
        services: RunServices,
        progress: Progress | None = None,
        status_sources: frozenset[str] | None = None,
        lease: Lease | None = None,
        hand_off: bool = False,
    ) -> None:
        """`lease`: this process's owner row, for a process that runs executions (`open()` starts it); `hand_off`:
        executions created here for others to follow go to the database's daemon when one runs (`gitsync run`)."""
        self.store = store
        self.lease = lease
        owner = lease.id if lease is not None else None
        self.services = services
        self.data_dir = services.data_dir
        self.registry = services.registry
        self.masker = services.masker
        self.renderer = services.renderer
        self.kv = services.kv
        self.executor = services.executor
        self.factory = ExecutionFactory(store, self.registry, self.renderer, owner, data_dir=self.data_dir)
        self.replays = Replays(store, self.factory)
        self.control = ControlRequests(store, owner)
        self.recorder = SqliteRecorder(store, progress, status_sources, self.masker, owner)
        self.recorder.on_disowned = self.control.cancel
        self.coordinator = ExecutionCoordinator(self.factory, self, self.control)
        self.triggers = TriggerStarts(self.factory, self.renderer, self.start_new)
        self.engine = Engine(
            Services(
                renderer=self.renderer,
                executor=self.executor,
                inline_executor=services.inline_executor,
                recorder=self.recorder,
                coordinator=self.coordinator,
                storage_for=self._storage,
                kv=self.kv,
                masker=self.masker,
                data_dir=self.data_dir,
                env=dict(task_environment(services.env) if services.task_env is None else services.task_env),
                envs=env_variables(services.env),
                ui_url=services.ui_url,
            )
        )
        daemon_runs = None if lease is None or not hand_off else (lambda: lease.live_daemon() is not None)
        self.runner = ExecutionRunner(
            store,
            self.factory,
            self.control,
            self.engine,
            self.triggers.fire_flow_triggers,
            daemon_runs,
            recorder=self.recorder,
        )
        self.recovery = Recovery(lease, self.factory, self.runner, status_sources) if lease is not None else None
        self._sweeping = threading.Event()
        self._sweeper: threading.Thread | None = None

    # -- ownership ------------------------------------------------------------------------------------------------

    def open(self, start_pending: bool = False) -> list[dict[str, Any]]:
        """Take this process's lease and resolve what gone owners left, now and every `SWEEP_SECONDS`; with
        `start_pending` (the daemon) also start the CREATED executions nobody else will (each sweep). Raises
        `OwnerConflict`, having changed nothing, when the lease is a daemon's and another daemon owns the database.
        Returns the executions resolved now."""
        if self.lease is None or self.recovery is None:
            return []
        self.lease.start()
        resolved = self.recovery.sweep()
        recovery = self.recovery

        def sweep() -> None:
            while not self._sweeping.wait(SWEEP_SECONDS):
                recovery.sweep()
                if start_pending:
                    self.start_pending()

        self._sweeper = threading.Thread(target=sweep, name="lease-sweep", daemon=True)
        self._sweeper.start()
        return resolved

    @property
    def progress(self) -> Progress | None:
        return self.recorder.progress

    @progress.setter
    def progress(self, progress: Progress | None) -> None:
        self.recorder.progress = progress

    @property
    def status_sources(self) -> frozenset[str] | None:
        """Sources whose executions report a commit status (None: every source, e.g. in tests)."""
        return self.recorder.status_sources

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
        kind: TriggerKind = "manual",
    ) -> str:
        """A new execution of the flow's active revision (or `revision`); inputs are checked now."""
        return self.factory.create(flow_uid, inputs, labels, trigger, trigger_uid, parent, revision, kind)

    def replay(
        self,
        execution_id: str,
        task_id: str | None = None,
        *,
        task_run_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        by_hand: bool = False,
    ) -> str:
        """A new execution of the revision the ended execution ran, run again from its task run `task_run_id` (or
        the first run of `task_id`): what ended done before that one started is carried over, not run again
        (`runner.engine.replay`). `inputs` are given again over the original's; `by_hand`: `gitsync replay`. The
        caller starts it (`start` or `run`). RunError when it cannot be (NotEnded: the execution has not ended)."""
        return self.replays.create(execution_id, task_id, task_run_id, inputs, by_hand)

    def create_unsynced(self, flow: Flow, inputs: dict[str, Any] | None = None) -> str:
        """An execution of a flow read from a file, not from git (`gitsync run --file`): revision 0, no commit."""
        return self.factory.create_unsynced(flow, inputs)

    def flow(self, flow_uid: str, revision: int) -> Flow:
        return self.factory.flow(flow_uid, revision)

    # -- running ------------------------------------------------------------------------------------------------

    def start(self, execution_id: str) -> None:
        """Run the execution on a thread of its own (unless flow concurrency or trigger overlap queues it)."""
        self.runner.start(execution_id)

    def start_new(self, execution_id: str) -> None:
        """Start an execution created here for another to follow, or hand it to the daemon (see `hand_off`)."""
        self.runner.start_new(execution_id)

    def active(self) -> list[str]:
        """The executions running (or waiting for a retry's delay) in this process."""
        return self.runner.active()

    def wait_all(self, timeout: float | None = None) -> bool:
        return self.runner.wait_all(timeout)

    @property
    def handed(self) -> list[str]:
        """The executions this process handed to the daemon."""
        return self.runner.handed

    def run(self, execution_id: str, cancelled: threading.Event | None = None) -> ExecutionOutcome | None:
        """Run the execution on the calling thread; None when it was queued, cancelled or refused instead."""
        return self.runner.run(execution_id, cancelled)

    def wait(self, execution_id: str, timeout: float | None = None) -> bool:
        return self.runner.wait(execution_id, timeout)

    def start_pending(self) -> list[str]:
        """Start every CREATED execution (fires recorded while no runner was there, e.g. before a restart)."""
        return self.runner.start_pending()

    def shutdown(self) -> None:
        """Stop every execution running here, then give the lease back (a clean stop: nothing is left to resolve
        but CREATED executions, which the daemon starts)."""
        self._sweeping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        self.runner.shutdown()
        self.executor.shutdown()
        self.recorder.flush()
        if self.lease is not None:
            self.lease.stop()

    def execution_state(self, execution_id: str) -> str:
        return execution_rows.execution_state(self.store, execution_id) or "UNKNOWN"

    # -- kill and resume ----------------------------------------------------------------------------------------

    def request_kill(self, execution_id: str) -> State:
        """Kill a running execution (its tasks are stopped) or cancel one that has not started."""
        return self.control.request_kill(execution_id)

    def request_resume(self, execution_id: str, inputs: dict[str, Any] | None = None) -> None:
        self.control.request_resume(execution_id, inputs)

    # -- Webhook triggers -----------------------------------------------------------------------------------------

    def webhook(self, namespace: str, flow_id: str, key: str, trigger: dict[str, Any]) -> str | None:
        """Create and start an execution for a Webhook trigger whose key matches; None when none does, "" (no
        execution) when the trigger's conditions or `when` refuse the call."""
        return self.triggers.webhook(namespace, flow_id, key, trigger)

    def webhook_key_matches(self, namespace: str, flow_id: str, key: str) -> bool:
        """Whether an enabled Webhook trigger of the flow has this key (constant time; no body is needed)."""
        return self.triggers.webhook_spec(namespace, flow_id, key) is not None

    # -- services for the engine --------------------------------------------------------------------------------

    def _storage(self, request: ExecutionRequest) -> LocalStorage:
        return LocalStorage(self.data_dir, request.flow.namespace, request.flow.id, request.id)
