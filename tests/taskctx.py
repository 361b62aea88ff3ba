"""A real RunContext for task tests: temp working directory, SQLite kv store, local storage, a recording logger.

ctx = make_context(tmp_path)            # namespace "company.team", flow "flow", execution "exec1"
outputs = SomeTask.model_validate({...}).run(ctx)
ctx.logger.lines                        # [("INFO", "message"), ...]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitsync.state.kv import SqliteKeyValue
from runner.api import LevelLogger, RunContext
from runner.storage import LocalStorage


@dataclass
class RecordingLogger(LevelLogger):
    """`runner.api.Logger` that keeps every line as (LEVEL, message)."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def log(self, level: str, message: str) -> None:
        self.lines.append((level.upper(), message))

    def messages(self, level: str | None = None) -> list[str]:
        return [m for lv, m in self.lines if level is None or lv == level.upper()]


def make_context(
    root: Path,
    *,
    namespace: str = "company.team",
    flow_id: str = "flow",
    execution_id: str = "exec1",
    task_id: str = "task",
    clock: Callable[[], float] | None = None,
    kv: SqliteKeyValue | None = None,
    **extra: Any,
) -> RunContext:
    """A RunContext over real parts under `root`: `root/work`, `root/data` (storage), `root/kv.db`."""
    workdir = root / "work" / execution_id / task_id
    workdir.mkdir(parents=True, exist_ok=True)
    if kv is None:
        kv = SqliteKeyValue(root / "kv.db", clock=clock) if clock else SqliteKeyValue(root / "kv.db")
    storage = LocalStorage(root / "data", namespace, flow_id, execution_id).for_task(task_id)
    return RunContext(
        execution_id=execution_id,
        namespace=namespace,
        flow_id=flow_id,
        flow_revision=1,
        task_id=task_id,
        task_run_id=f"{task_id}-run",
        attempt=1,
        workdir=workdir,
        logger=RecordingLogger(),
        storage=storage,
        kv=kv,
        **extra,
    )
