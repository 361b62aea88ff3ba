"""One running execution's data: outputs, task states, labels, task-run ids, and the expression variables
built from them (`ExecutionData`); and its transitions, the task-run records and logs sent to the recorder
(`Transitions`). Threads of Parallel branches share both, so every change holds `lock`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from runner.api import NamespaceFiles, Storage
from runner.durations import format_duration
from runner.engine.context import Scope
from runner.engine.invocation import work_root
from runner.engine.reads import ERROR_LOGS, execution_functions
from runner.engine.records import ExecutionRequest, LogLine, Services, TaskRunRecord, utcnow
from runner.inputs import coerce_input_value
from runner.masking import LineMasker
from runner.namespace_files import read_text
from runner.plugin import Task
from runner.states import State

SYSTEM_PREFIX = "system."
CORRELATION_ID = "system.correlationId"
"""The id of the first execution of a chain (the execution itself, its subflows, theirs): set on every execution."""
USERNAME = "system.username"
"""Who started the execution by hand (`gitsync run`): the operating-system user."""


def namespace_files_of(services: Services, commit: str) -> NamespaceFiles | None:
    """The namespace files of the commit of the execution's revision (None: no commit, or none readable)."""
    return services.namespace_files(commit) if services.namespace_files is not None and commit else None


def is_system_label(key: str) -> bool:
    return key.startswith(SYSTEM_PREFIX)


def execution_labels(request: ExecutionRequest) -> dict[str, str]:
    """The flow's labels (not its system ones: `system.readOnly` is about the flow), then the execution's own, and
    `system.correlationId` (the execution's id unless it came with one, from its parent)."""
    flow_labels = {k: v for k, v in (request.flow.labels or {}).items() if not is_system_label(k)}
    labels = {**flow_labels, **request.labels}
    labels.setdefault(CORRELATION_ID, request.id)
    return labels


class LabelView(dict[str, str]):
    """The labels, as `labels` in expressions: a plain map of the keys as written, where a dotted key is also read
    by its parts (`labels.system.correlationId`, `labels.team.name`) as well as whole (`labels['team.name']`)."""

    def __missing__(self, key: str) -> LabelView:
        prefix = f"{key}."
        inner = {k[len(prefix) :]: v for k, v in self.items() if isinstance(k, str) and k.startswith(prefix)}
        if not inner:
            raise KeyError(key)
        return LabelView(inner)


_TEXT_TYPES = frozenset({"STRING", "SECRET", "ENUM", "SELECT", "URI", "EMAIL", "FILE"})
"""Output types whose value is text: a map or a list renders to its JSON."""


def typed_output(output_type: str, rendered: Any) -> Any:
    """A flow output's rendered value as its type makes it, as Kestra types flow outputs: text types are text (a map
    or list as its JSON), every other type is coerced as an input of that type would be, then kept in its JSON form
    (dates and times in ISO-8601, durations as PT…). Raises ValueError saying what was expected."""
    kind = output_type.upper()
    if rendered is None:
        return None
    if kind in _TEXT_TYPES:
        rendered = _as_text(rendered)
    return _json_form(coerce_input_value(kind, rendered))


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value) if isinstance(value, int | float) else value


def _json_form(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, list):
        return [_json_form(item) for item in value]
    return value


class ExecutionData:
    """What the execution knows so far, and the variables expressions see."""

    def __init__(self, services: Services, request: ExecutionRequest, storage: Storage) -> None:
        self.request = request
        self.outputs: dict[str, Any] = {}
        self.task_states: dict[str, Any] = {}
        self.labels = LabelView(execution_labels(request))
        self.lock = threading.RLock()
        self.started = request.started_at or utcnow()
        self.state = State.RUNNING
        self.error: str | None = None
        """What ended the execution, once it ended failed (None when it did not fail)."""
        self._failures: dict[str, str] = {}
        """Task run id -> error, of each task failure that still stands (not retried, not allowed)."""
        self._parents: dict[str, str | None] = {}
        self._runs: dict[str, TaskRunRecord] = {}
        """Task run id -> its record (state kept current by `Transitions.record`), for `tasksWithState()`."""
        self._error_logs: list[LogLine] = []
        """The first ERROR lines, for `errorLogs()`."""
        self._ids = 0
        self._work_root = work_root(services.data_dir, request.id)
        self.namespace_files = namespace_files_of(services, request.commit)
        self._base = self._base_variables(services, storage)

    def _base_variables(self, services: Services, storage: Storage) -> dict[str, Any]:
        from runner.expressions.renderer import RUNTIME, RenderRuntime  # with the first execution

        flow = self.request.flow
        request = self.request
        return {
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": request.revision},
            "execution": {
                "id": request.id,
                "startDate": self.started,
                "originalId": request.original_id or request.id,
                "state": State.RUNNING.value,
            },
            "inputs": request.inputs,
            "vars": flow.variables or {},
            "labels": self.labels,
            "trigger": request.trigger or {},
            "outputs": self.outputs,
            "tasks": self.task_states,
            "envs": services.envs,
            "globals": services.globals,
            RUNTIME: RenderRuntime(
                kv=services.kv,
                storage=storage,
                namespace_files=None if self.namespace_files is None else partial(read_text, self.namespace_files),
                functions=execution_functions(self, flow.namespace, flow.id),
            ),
        }

    # -- ExecutionReads (what expressions read of the execution)

    def task_runs(self) -> list[TaskRunRecord]:
        with self.lock:
            return list(self._runs.values())

    def error_logs(self) -> list[LogLine]:
        with self.lock:
            return list(self._error_logs)

    def note_log(self, line: LogLine) -> None:
        """A log line was recorded: the first ERROR ones are kept for `errorLogs()`."""
        if line.level == "ERROR":
            with self.lock:
                if len(self._error_logs) < ERROR_LOGS:
                    self._error_logs.append(line)

    def workdir(self, scope: Scope, record: TaskRunRecord) -> Path:
        """The task run's working directory: the enclosing WorkingDirectory's, or its own."""
        return scope.workdir or self._work_root / record.id

    def variables(self, task: Task, scope: Scope, record: TaskRunRecord) -> dict[str, Any]:
        variables = dict(self._base)
        variables["execution"] = {**variables["execution"], "state": self.state.value}
        variables["task"] = {"id": task.id, "type": type(task).type_name}
        variables["taskrun"] = {
            "id": record.id,
            "startDate": record.started_at or utcnow(),
            "attemptsCount": record.attempt - 1,  # Kestra counts the attempts before this one
            "parentId": scope.parent_id,
            "value": scope.value,
            "iteration": scope.iteration,
        }
        if scope.parents:
            variables["parent"] = scope.parents[0]
            variables["parents"] = list(scope.parents)
        if scope.item is not None:
            variables["item"] = scope.item
        workdir = str(self.workdir(scope, record))
        variables["workingDir"] = workdir
        variables["outputDir"] = workdir
        return {**task.render_variables(workdir), **variables}

    def flow_variables(self) -> dict[str, Any]:
        variables = dict(self._base)
        variables["execution"] = {**variables["execution"], "state": self.state.value}
        return variables

    def store_outputs(self, task_id: str, scope: Scope, outputs: dict[str, Any]) -> None:
        """Keep a task's outputs, under its loop values inside loops (`outputs.t.<value>.<key>`)."""
        self._store(task_id, scope.loop_values, outputs)

    def _store(self, task_id: str, loop_values: tuple[str, ...], outputs: dict[str, Any]) -> None:
        with self.lock:
            if not loop_values:
                self.outputs[task_id] = outputs
                return
            node = self.outputs.setdefault(task_id, {})
            for value in loop_values[:-1]:
                node = node.setdefault(value, {})
            node[loop_values[-1]] = outputs

    def adopt(self, record: TaskRunRecord) -> None:
        """A task run carried over from the execution this one replays: one of this execution's task runs, its
        outputs where the original kept them (under its loop values)."""
        with self.lock:
            self._parents[record.id] = record.parent_id
            self._runs[record.id] = record
            if record.outputs:
                self._store(record.task_id, record.loop_values, record.outputs)

    def add_labels(self, labels: Mapping[str, str]) -> None:
        """Labels a task set (the Labels task); system labels are gitsync's own and are never replaced."""
        with self.lock:
            self.labels.update({str(k): str(v) for k, v in labels.items() if not is_system_label(str(k))})

    def note_failure(self, task_run_id: str, message: str) -> None:
        """A task failed for good: no attempt is left. It stands until an allowFailure above it forgives it."""
        with self.lock:
            self._failures.setdefault(task_run_id, message)

    def forgive(self, task_run_id: str) -> None:
        """The task run's failure became a warning (allowFailure): neither it nor a failure inside it stands."""
        with self.lock:
            for failed in list(self._failures):
                node: str | None = failed
                while node is not None and node != task_run_id:
                    node = self._parents.get(node)
                if node is not None:
                    del self._failures[failed]

    def standing_failures(self) -> list[str]:
        """The task run ids of the failures that still stand, first failed first."""
        with self.lock:
            return list(self._failures)

    def ending_error(self, state: State) -> str | None:
        """The error of an execution that ends in `state`: what failed it (an error already set, else the first
        failure that still stands); None when it did not fail."""
        if not state.is_failure:
            return None
        with self.lock:
            return self.error or next(iter(self._failures.values()), None)

    def new_id(self) -> str:
        with self.lock:
            self._ids += 1
            return f"{self.request.id}-{self._ids:04d}"

    def new_record(self, task: Task, scope: Scope, attempt: int) -> TaskRunRecord:
        task_run_id = self.new_id()
        record = TaskRunRecord(
            id=task_run_id,
            execution_id=self.request.id,
            task_id=task.id,
            task_type=type(task).type_name,
            parent_id=scope.parent_id,
            value=scope.value,
            iteration=scope.iteration,
            attempt=attempt,
            state=State.CREATED,
            loop_values=scope.loop_values,
        )
        with self.lock:
            self._parents[task_run_id] = scope.parent_id
            self._runs[task_run_id] = record
        return record


class Transitions:
    """Task-run transitions and logs, masked, sent to the recorder."""

    def __init__(self, services: Services, data: ExecutionData) -> None:
        self.recorder = services.recorder
        self.masker = services.masker
        self.data = data
        self.execution_id = data.request.id

    def record(self, record: TaskRunRecord, state: State, **changes: Any) -> None:
        record.state = state
        for key, value in changes.items():
            setattr(record, key, value)
        if state.is_terminal:
            with self.data.lock:
                self.data.task_states[record.task_id] = {"state": state.value}
        self.recorder.task_run(record)

    def skipped(self, record: TaskRunRecord) -> None:
        now = utcnow()
        self.record(record, State.SKIPPED, started_at=now, ended_at=now)

    def log(self, record: TaskRunRecord, level: str, message: str) -> None:
        line = LogLine(self.execution_id, record.id, utcnow(), level, self.masker.mask(message))
        self.data.note_log(line)
        self.recorder.logs([line])

    def sink(self, record: TaskRunRecord) -> _RecorderSink:
        return _RecorderSink(self, record.id)

    def fail_message(self, task: Task, message: str) -> str:
        return self.masker.mask(f"task '{task.id}': {message}")

    def labels_changed(self) -> None:
        self.recorder.execution(self.execution_id, State.RUNNING, labels=self.data.labels)


class _RecorderSink:
    """`LogSink` of one task run: each line masked and recorded as it comes. A line that ends with the start of a
    secret waits for the next one (a secret split over two lines is masked too); `flush()` at the task's end."""

    def __init__(self, transitions: Transitions, task_run_id: str) -> None:
        self.recorder = transitions.recorder
        self.data = transitions.data
        self.execution_id = transitions.execution_id
        self.task_run_id = task_run_id
        self.lines = LineMasker(transitions.masker, self._record)

    def __call__(self, level: str, message: str) -> None:
        self.lines.feed(level, message)

    def flush(self) -> None:
        self.lines.flush()

    def _record(self, level: str, message: str) -> None:
        line = LogLine(self.execution_id, self.task_run_id, utcnow(), level, message)
        self.data.note_log(line)
        self.recorder.logs([line])
