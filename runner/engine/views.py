"""The execution a task that `reads_execution` reports on (`runner.api.ExecutionView`): its own, from the engine's
record in memory (still RUNNING, its task runs so far), or another one (`executionId: "{{ trigger.executionId }}"`
in a flow a Flow trigger started) as the control plane recorded it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from runner.api import ExecutionView, TaskFailed, TaskRunView
from runner.engine.data import ExecutionData
from runner.engine.records import Services, TaskRunRecord


def execution_view(
    services: Services, data: ExecutionData, properties: dict[str, Any], reporter: str
) -> dict[str, Any]:
    """The view, as plain data for the invocation; TaskFailed naming the id when no execution has it. The task that
    reports (`reporter`, its id) is left out of its own execution's task runs, every attempt of it: it reports on
    the others."""
    request = data.request
    wanted = properties.get("executionId")
    execution_id = str(wanted).strip() if wanted not in (None, "") else request.id
    if execution_id == request.id:
        view = ExecutionView(
            id=request.id,
            namespace=request.flow.namespace,
            flow_id=request.flow.id,
            state=data.state.value,
            started_at=_iso(data.started) or "",
            task_runs=tuple(task_run_view(run) for run in data.task_runs() if run.task_id != reporter),
        )
    else:
        found = services.coordinator.execution_view(execution_id)
        if found is None:
            raise TaskFailed(f"executionId {execution_id!r}: there is no execution with that id", permanent=True)
        view = found
    if services.ui_url:
        link = f"{services.ui_url.rstrip('/')}/executions/{quote(view.id, safe='')}"
        view = replace(view, link=link)
    return view.to_dict()


def task_run_view(run: TaskRunRecord) -> TaskRunView:
    return TaskRunView(
        id=run.id,
        task_id=run.task_id,
        state=run.state.value,
        value=run.value,
        started_at=_iso(run.started_at),
        ended_at=_iso(run.ended_at),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
