"""The contract between the engine and a runnable task: `run(ctx) -> dict` and the `RunContext` it receives.

A runnable task class (a `runner.plugin.Task` subclass) implements

    def run(self, ctx: RunContext) -> dict[str, Any]:

Its properties are already rendered when `run` is called (the engine renders every `{{ }}` before handing
the task to an executor), so `self.message` is the final text. `run` returns the task's outputs (what
`{{ outputs.<task_id>.<key> }}` reads). To fail, raise `TaskFailed` (message first, outputs optional); to
end in WARNING, call `ctx.warn(reason)` and return normally. Long-running tasks check `ctx.cancelled` (set on
kill and on timeout); a task that starts processes runs them in their own process group and kills the group
when `ctx.cancelled` is set.

A task never opens the state database: everything it needs (logs, files, key-value store, secrets) comes
from the context, so the same task runs in-process or on a worker.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runner.errors import GitSyncError


class TaskFailed(GitSyncError):
    """The task failed; `message` is shown to the user (masked), `outputs` are kept.

    `permanent`: trying again fails the same way (an HTTP 4xx other than 408 and 429, a refused connection, an
    unknown host, an invalid URL, a command that is not installed), so the task's `retry` does not run it again
    unless it says `retryPermanentErrors: true`. Anything that may pass on another attempt is not permanent."""

    def __init__(self, message: str, outputs: dict[str, Any] | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.outputs = outputs or {}
        self.permanent = permanent


class TaskKilled(TaskFailed):
    """The task stopped because the execution was killed or the task timed out."""


class Logger(Protocol):
    """Task-run logs: stored with bounded memory, secrets masked."""

    def trace(self, message: str) -> None: ...
    def debug(self, message: str) -> None: ...
    def info(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...
    def log(self, level: str, message: str) -> None: ...


class LevelLogger(ABC):
    """The level methods of `Logger` over one `log(level, message)`: subclass and implement `log`."""

    @abstractmethod
    def log(self, level: str, message: str) -> None: ...

    def trace(self, message: str) -> None:
        self.log("TRACE", message)

    def debug(self, message: str) -> None:
        self.log("DEBUG", message)

    def info(self, message: str) -> None:
        self.log("INFO", message)

    def warn(self, message: str) -> None:
        self.log("WARN", message)

    def error(self, message: str) -> None:
        self.log("ERROR", message)


class Storage(Protocol):
    """The execution's file storage: files are addressed by `kestra:///…` URIs."""

    def put(self, source: Path | bytes, name: str) -> str:
        """Store a file (a path is copied, bytes are written) and return its kestra:/// URI."""
        ...

    def path(self, uri: str) -> Path:
        """Local path of a stored file (for reading); raises TaskFailed for an unknown URI."""
        ...

    def delete_all(self) -> int:
        """Remove every file of the execution (PurgeCurrentExecutionFiles); returns how many."""
        ...


class KeyValue(Protocol):
    """The namespaced key-value store (`kv()` in expressions, the kv Set/Get/Delete tasks)."""

    def get(self, namespace: str, key: str) -> Any: ...
    def set(
        self, namespace: str, key: str, value: Any, ttl_seconds: float | None = None, overwrite: bool = True
    ) -> None: ...

    def delete(self, namespace: str, key: str) -> bool: ...
    def keys(self, namespace: str, prefix: str | None = None) -> list[str]: ...


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What `KeyValue.get` returns for an absent or expired key."""


@dataclass(frozen=True)
class TaskRunView:
    """One task run of an execution a task reports on (`ExecutionView`)."""

    id: str
    task_id: str
    state: str
    value: Any = None
    started_at: str | None = None
    """ISO-8601 instant, or None before it started."""
    ended_at: str | None = None


@dataclass(frozen=True)
class ExecutionView:
    """An execution as a notification task reports it (the `*Execution` tasks): what the engine knows of its own
    execution, or what the control plane recorded of another one (`executionId: "{{ trigger.executionId }}"`).
    Plain data, so that it travels in a `TaskInvocation` to a worker."""

    id: str
    namespace: str
    flow_id: str
    state: str
    started_at: str
    """ISO-8601 instant."""
    ended_at: str | None = None
    """None while it runs."""
    task_runs: tuple[TaskRunView, ...] = ()
    """Every task run (each attempt its own), in the order they were created."""
    link: str | None = None
    """Its page in the web UI when `http.public_url` is set."""
    current: bool = True
    """It is the execution the task runs in."""

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionView:
        runs = tuple(TaskRunView(**run) for run in data.get("task_runs") or ())
        return cls(**{**data, "task_runs": runs})


@dataclass
class RunContext:
    """What a running task knows about where it runs. Built by the engine for each task-run attempt."""

    execution_id: str
    namespace: str
    flow_id: str
    flow_revision: int
    task_id: str
    task_run_id: str
    attempt: int
    workdir: Path
    """A working directory of its own (or the enclosing WorkingDirectory's, shared by its tasks)."""
    logger: Logger
    storage: Storage
    kv: KeyValue
    env: dict[str, str] = field(default_factory=dict)
    """Environment for processes the task starts: a clean base the control plane chose (PATH, HOME, TMPDIR, TZ,
    locale and what `tasks.env_allow` names; never the service's tokens or SECRET_* values), to which a task adds
    its own `env`."""
    secrets: list[str] = field(default_factory=list)
    """Secret values in use; outputs, logs and errors have them masked."""
    value: Any = None
    """The ForEach value of this task run (`taskrun.value`), if any."""
    iteration: int | None = None
    timeout_seconds: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set when the execution is killed or the task times out."""
    on_started: Callable[[], None] | None = None
    """Called by `mark_started()` (see `Task.reports_start`): the engine records the task's start then."""
    labels: dict[str, str] = field(default_factory=dict)
    _warnings: list[str] = field(default_factory=list)
    new_labels: dict[str, str] = field(default_factory=dict)
    """Labels a task adds to its execution (the Labels task)."""
    allow_docker_fallback: bool = False
    """Run Docker-runner scripts as local processes when no Docker engine answers (the config allows it)."""
    python: str = "python3"
    """The interpreter Python script tasks start from (`tasks.python`): a name on the task's PATH, or a path."""
    python_envs: Path | None = None
    """The folder of the per-namespace virtual environments Python tasks run in (`tasks.python_env: namespace`);
    None: a virtual environment of the task run's own, beside its working directory."""
    execution: ExecutionView | None = None
    """The execution a task that `reads_execution` reports on (its `executionId`); None for any other task."""

    def mark_started(self) -> None:
        """The task's work has begun outside this thread (a script: its process runs)."""
        if self.on_started is not None:
            self.on_started()

    def warn(self, reason: str) -> None:
        """End this task run in WARNING (the outputs are kept)."""
        self._warnings.append(reason)
        self.logger.warn(reason)

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)
