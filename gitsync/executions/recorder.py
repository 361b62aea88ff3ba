"""`runner.engine.records.Recorder` over SQLite: the engine's task runs, execution states and logs.

A fast in-process task's transitions and logs are committed together when it ends (one transaction); a task
that goes to a worker gets its RUNNING row first. Each execution state change also writes, in the same
transaction, the `gitsync/<namespace>.<flow>` commit status it means (see `gitsync.state.executions`).

Every write is masked here, whatever the engine did: a task run's value, outputs and error, an execution's
labels, outputs and error (hence the commit status description), and what progress listeners are told.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitsync.state import executions as execution_rows
from gitsync.state import task_runs as task_run_rows
from gitsync.state.database import Store
from runner.engine.records import LogLine, TaskRunRecord
from runner.masking import Masker
from runner.states import State

_MASKED_FIELDS = ("outputs", "labels", "error")

Progress = Callable[[str, Any], None]
"""Told of every record as it is written: ("task_run", TaskRunRecord), ("execution", (id, state, fields)) and
("log", LogLine)."""


class SqliteRecorder:
    """Each transition is one short transaction.

    Inside `batch()` (the engine's trivially fast in-process tasks), the calling thread's task-run and log writes
    are held and committed together in one transaction when the block ends: the task's end state is persisted
    before the engine goes on, and the RUNNING row a reader could not have seen is written as its last state.
    """

    def __init__(
        self,
        store: Store,
        progress: Progress | None = None,
        status_sources: frozenset[str] | None = None,
        masker: Masker | None = None,
    ) -> None:
        self.store = store
        self.masker = masker if masker is not None else Masker()
        self.progress = progress
        self.status_sources = status_sources
        """Sources whose executions report a commit status (None: every source, e.g. in tests)."""
        self._local = threading.local()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._local, "pending", None) is not None:
            yield
            return
        pending = self._local.pending = _Pending()
        try:
            yield
        finally:
            self._local.pending = None
            task_run_rows.write(self.store, list(pending.task_runs.values()), pending.logs)

    def task_run(self, record: TaskRunRecord) -> None:
        record = self._masked(record)
        row = task_run_rows.task_run_row(record)
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.task_runs[record.id] = row
        else:
            task_run_rows.write(self.store, [row], [])
        if self.progress is not None:
            self.progress("task_run", record)

    def execution(self, execution_id: str, state: State, **fields: Any) -> None:
        for key in _MASKED_FIELDS:
            if fields.get(key) is not None:
                fields[key] = self.masker.mask_value(fields[key])
        execution_rows.record_state(self.store, execution_id, state, fields, self.status_sources)
        if self.progress is not None:
            self.progress("execution", (execution_id, state, fields))

    def _masked(self, record: TaskRunRecord) -> TaskRunRecord:
        """A copy of the record with its value, outputs and error masked (the record itself when nothing is)."""
        masker = self.masker
        if not masker.active:
            return record
        value, outputs = masker.mask_value(record.value), masker.mask_value(record.outputs)
        error = masker.mask(record.error) if record.error else record.error
        if value == record.value and outputs == record.outputs and error == record.error:
            return record
        return dataclasses.replace(record, value=value, outputs=outputs, error=error)

    def logs(self, lines: Sequence[LogLine]) -> None:
        rows = [task_run_rows.log_row(line) for line in lines]
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.logs.extend(rows)
        else:
            task_run_rows.write(self.store, [], rows)
        if self.progress is not None:
            for line in lines:
                self.progress("log", line)


@dataclass
class _Pending:
    """Writes held by `batch()`: the last row of each task run (in first-seen order) and the log lines."""

    task_runs: dict[str, task_run_rows.TaskRunRow] = field(default_factory=dict)
    logs: list[task_run_rows.LogRow] = field(default_factory=list)
