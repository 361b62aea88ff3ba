"""Local executors of the `runner.engine.invocation` contract: a thread pool, and inline on the caller's thread.

Both run an invocation the same way (`run_invocation`): resolve the class by type name from their own
registry, validate the rendered properties, build the `RunContext` from their own `WorkerServices` (storage,
kv, secrets, a logger that streams to the sink) and pack the outcome into a `TaskResult`. `LocalExecutor`
(the embedded default) runs tasks on a bounded pool of threads; script tasks start their own processes from
there. `InlineExecutor` runs tasks that only compute (`Task.runs_inline`) without a hop between threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.api import ExecutionView, KeyValue, LevelLogger, RunContext, Storage, TaskFailed, TaskKilled
from runner.engine.invocation import LogSink, TaskInvocation, TaskLog, TaskResult, storage_uris, work_root
from runner.engine.records import iso, utcnow
from runner.plugin import Task
from runner.registry import Registry
from runner.signals import ExitExecution
from runner.states import State
from runner.storage import LocalStorage

log = logging.getLogger("gitsync.engine")
_PLACES = 256


@dataclass
class WorkerServices:
    """What an executor builds a task's `RunContext` from (the worker's own, never the engine's objects)."""

    registry: Registry
    data_dir: Path
    kv: KeyValue
    secrets: Callable[[], Iterable[str]] = tuple
    """The secret values in use (tasks mask them in what they print)."""
    allow_docker_fallback: bool = False
    python: str = "python3"
    """The interpreter of Python script tasks (`RunContext.python`)."""
    python_envs: Path | None = None
    """Where the per-namespace virtual environments of Python tasks live (`RunContext.python_envs`)."""
    storage_for: Callable[[TaskInvocation], Storage] | None = None
    """The task's storage; by default the execution's files under `data_dir`."""
    _places: OrderedDict[tuple[str, str, str], tuple[LocalStorage, Path]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _made: set[tuple[str, str, str]] = field(default_factory=set, init=False, repr=False)
    """The places whose root of working directories exists (created by this process)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def storage(self, invocation: TaskInvocation) -> Storage:
        if self.storage_for is not None:
            return self.storage_for(invocation)
        return self._place(invocation)[0].for_task(invocation.task_id)

    def workdir(self, invocation: TaskInvocation) -> Path:
        if invocation.workdir is not None:
            return Path(invocation.workdir)
        return self._place(invocation)[1] / invocation.task_run_id

    def make_workdir(self, invocation: TaskInvocation) -> Path:
        """The task run's working directory, created: one `mkdir` for a task run of its own (the execution's
        root of them is created once, with its place)."""
        if invocation.workdir is not None:
            workdir = Path(invocation.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            return workdir
        root = self._place(invocation, made=True)[1]
        workdir = root / invocation.task_run_id
        try:
            os.mkdir(workdir)
        except FileExistsError:
            pass
        except FileNotFoundError:  # the execution's folder was removed meanwhile
            workdir.mkdir(parents=True, exist_ok=True)
        return workdir

    def _place(self, invocation: TaskInvocation, made: bool = False) -> tuple[LocalStorage, Path]:
        """The execution's storage and the root of its task runs' folders, kept for the latest executions (the
        hot path builds neither per task); `made`: with that root created."""
        key = (invocation.namespace, invocation.flow_id, invocation.execution_id)
        with self._lock:
            place = self._places.get(key)
            if place is None:
                storage = LocalStorage(self.data_dir, *key)
                place = (storage, work_root(self.data_dir, invocation.execution_id))
                self._places[key] = place
                if len(self._places) > _PLACES:
                    self._made.discard(self._places.popitem(last=False)[0])
            if made and key not in self._made:
                place[1].mkdir(parents=True, exist_ok=True)
                self._made.add(key)
            return place


class _SinkLogger(LevelLogger):
    """`runner.api.Logger` of one task run: bounded (a task that prints gigabytes is cut, not the daemon);
    each line goes to the sink, or is kept for the result when there is none."""

    def __init__(self, sink: LogSink | None, max_lines: int) -> None:
        self.sink = sink
        self.max_lines = max_lines
        self.kept: list[TaskLog] = []
        self.count = 0
        self.lock = threading.Lock()

    def log(self, level: str, message: str) -> None:
        with self.lock:
            self.count += 1
            if self.count > self.max_lines:
                if self.count != self.max_lines + 1:
                    return
                message = f"log limit of {self.max_lines} lines reached; further lines are not stored"
                level = "WARN"
        if self.sink is not None:
            self.sink(level.upper(), str(message))
        else:
            self.kept.append(TaskLog(level.upper(), str(message), iso(utcnow()) or ""))


def run_invocation(
    services: WorkerServices,
    invocation: TaskInvocation,
    sink: LogSink | None,
    cancelled: threading.Event,
    started: threading.Event | None = None,
) -> TaskResult:
    """Run one invocation to its result; never raises (a crash is a FAILED result). `started`, when given, is set
    when the task has begun (by the task itself when it `reports_start`), and at the latest when it ends."""
    try:
        return _run(services, invocation, sink, cancelled, started)
    finally:
        if started is not None:
            started.set()


def _run(
    services: WorkerServices,
    invocation: TaskInvocation,
    sink: LogSink | None,
    cancelled: threading.Event,
    started: threading.Event | None,
) -> TaskResult:
    cls = services.registry.lookup(invocation.type)
    if cls is None or not issubclass(cls, Task) or cls.flowable:
        return TaskResult(State.FAILED.value, error=f"task type {invocation.type} cannot run on this executor")
    try:
        task = cls.model_validate(invocation.properties)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        return TaskResult(State.FAILED.value, error=f"rendered properties are invalid: {problems}")
    logger = _SinkLogger(sink, invocation.max_log_lines)
    ctx = _context(services, invocation, cls, logger, cancelled, started)
    if started is not None and not cls.reports_start:
        started.set()
    try:
        outputs = task.run(ctx)  # type: ignore[attr-defined]
    except ExitExecution as exc:
        return TaskResult(State.SUCCESS.value, logs=logger.kept, exit_state=exc.state)
    except TaskFailed as exc:
        state = State.KILLED if isinstance(exc, TaskKilled) else State.FAILED
        return _packed(state, exc.outputs, logger, ctx, error=exc.message, permanent=exc.permanent)
    except Exception as exc:
        log.exception("task %s crashed", invocation.task_id)
        return TaskResult(State.FAILED.value, logs=logger.kept, error=f"{type(exc).__name__}: {exc}")
    return _packed(State.WARNING if ctx.warnings else State.SUCCESS, outputs or {}, logger, ctx)


def _packed(
    state: State,
    outputs: dict[str, Any],
    logger: _SinkLogger,
    ctx: RunContext,
    error: str | None = None,
    permanent: bool = False,
) -> TaskResult:
    return TaskResult(
        state.value,
        outputs=outputs,
        logs=logger.kept,
        output_files=storage_uris(outputs) if outputs else [],
        error=error,
        permanent=permanent,
        warnings=ctx.warnings,
        labels={str(k): str(v) for k, v in ctx.new_labels.items()},
    )


def _context(
    services: WorkerServices,
    invocation: TaskInvocation,
    cls: type[Task],
    logger: _SinkLogger,
    cancelled: threading.Event,
    started: threading.Event | None,
) -> RunContext:
    workdir = services.workdir(invocation) if cls.runs_inline else services.make_workdir(invocation)
    return RunContext(
        execution_id=invocation.execution_id,
        namespace=invocation.namespace,
        flow_id=invocation.flow_id,
        flow_revision=invocation.flow_revision,
        task_id=invocation.task_id,
        task_run_id=invocation.task_run_id,
        attempt=invocation.attempt,
        workdir=workdir,
        logger=logger,
        storage=services.storage(invocation),
        kv=services.kv,
        env=invocation.env,
        secrets=list(services.secrets()),
        value=invocation.value,
        iteration=invocation.iteration,
        timeout_seconds=invocation.timeout_seconds,
        cancelled=cancelled,
        on_started=None if started is None else started.set,
        labels=dict(invocation.labels),
        allow_docker_fallback=services.allow_docker_fallback,
        python=services.python,
        python_envs=services.python_envs,
        execution=None if invocation.execution is None else ExecutionView.from_dict(invocation.execution),
    )


class _FutureHandle:
    """`TaskHandle` over a future of the pool."""

    def __init__(self, future: Future[TaskResult], cancelled: threading.Event, started: threading.Event) -> None:
        self._future = future
        self._cancelled = cancelled
        self._started = started

    def wait_started(self, timeout: float | None = None) -> bool:
        return self._started.wait(timeout)

    def result(self, timeout: float | None = None) -> TaskResult:
        return self._future.result(timeout)

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


class _DoneHandle:
    """`TaskHandle` of an invocation that already ran (inline)."""

    def __init__(self, result: TaskResult) -> None:
        self._result = result
        self._cancelled = False

    def result(self, timeout: float | None = None) -> TaskResult:
        return self._result

    def wait_started(self, timeout: float | None = None) -> bool:
        return True

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled


class InlineExecutor:
    """Runs an invocation on the caller's thread (tasks that only compute; tests)."""

    def __init__(self, services: WorkerServices) -> None:
        self.services = services

    def submit(self, invocation: TaskInvocation, sink: LogSink | None = None) -> _DoneHandle:
        return _DoneHandle(run_invocation(self.services, invocation, sink, threading.Event()))

    def shutdown(self) -> None:
        pass


class LocalExecutor:
    """A bounded pool of worker threads (default 32): at most that many runnable tasks run at once."""

    def __init__(self, services: WorkerServices, workers: int = 32) -> None:
        self.services = services
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="task")

    def submit(self, invocation: TaskInvocation, sink: LogSink | None = None) -> _FutureHandle:
        cancelled, started = threading.Event(), threading.Event()
        future = self._pool.submit(run_invocation, self.services, invocation, sink, cancelled, started)
        return _FutureHandle(future, cancelled, started)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
