"""What the API returns and the web UI shows, as pydantic models: the handlers build these, the OpenAPI document
is generated from them (`gitsync.http.openapi`), and the pages render them. Times are ISO-8601 UTC strings as
the state holds them; values from outside (inputs, outputs, trigger variables, logs) are data, already masked.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(_View, Generic[T]):
    """One page of a list, newest or first first; pass `next_cursor` as `cursor` for the next page."""

    items: list[T]
    next_cursor: str | None = Field(description="null on the last page")


class Problem(_View):
    """RFC 9457 problem details: every error of the API."""

    type: str
    title: str
    status: int
    detail: str


class Accepted(_View):
    """A request taken: what it was taken for."""

    accepted: list[str]


class CommitRef(_View):
    sha: str
    url: str | None = Field(None, description="the commit's page on its git host, when the source's host is known")


class Namespace(_View):
    name: str
    flows: int
    disabled: int


class ExecutionBrief(_View):
    id: str
    state: str
    created_at: str


class FlowSummary(_View):
    uid: str = Field(description="namespace.id")
    namespace: str
    id: str
    revision: int
    commit: CommitRef
    source: str
    path: str
    disabled: bool
    author: str | None
    message: str | None = Field(description="the commit message of the revision")
    applied_at: str | None
    last_execution: ExecutionBrief | None = None


class Revision(_View):
    revision: int
    commit: CommitRef
    author: str | None
    message: str | None
    applied_at: str
    path: str
    deleted: bool


class InputSpec(_View):
    """One input of a flow, as its Run form asks for it."""

    id: str
    type: str
    required: bool
    defaults: Any = None
    description: str | None = None
    values: list[Any] | None = Field(None, description="the choices of a SELECT or MULTISELECT input")
    multiple: bool = False


class Trigger(_View):
    uid: str
    flow: str
    trigger_id: str
    type: str
    cron: str | None
    timezone: str | None
    disabled: bool
    paused: bool
    flow_disabled: bool
    last_scheduled_at: str | None
    next_fire: str | None
    next_fires: list[str] = Field(description="the next scheduled times (a Schedule trigger, not paused)")


class Flow(FlowSummary):
    description: str | None
    labels: dict[str, Any]
    inputs: list[InputSpec]
    triggers: list[Trigger]
    revisions: list[Revision]
    last_success: ExecutionBrief | None
    last_success_revision: int | None = Field(description="the revision the last successful execution ran")


class FlowSource(_View):
    uid: str
    revision: int
    commit: CommitRef
    path: str
    deleted: bool
    text: str | None = Field(description="the YAML at that revision; null for a removal")


class FlowDiff(_View):
    uid: str
    from_revision: int
    to_revision: int
    from_commit: CommitRef
    to_commit: CommitRef
    diff: str = Field(description="a unified diff of the YAML, empty when both are the same")


class SyncSummary(_View):
    id: int
    source: str
    commit: CommitRef | None
    previous_commit: CommitRef | None
    outcome: str = Field(description="applied | unchanged | invalid | refused | failed")
    started_at: str
    ended_at: str | None
    summary: str | None
    errors: int
    warnings: int


class SyncIssue(_View):
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    flow: str | None = None


class Sync(SyncSummary):
    error_list: list[SyncIssue]
    warning_list: list[SyncIssue]
    plan: str | None = Field(description="the plan as markdown, as the pull-request comment shows it")


class Source(_View):
    name: str
    repo: str
    branch: str | None
    path: str
    namespace_prefix: str | None
    applied: CommitRef | None
    applied_at: str | None
    last_sync: SyncSummary | None


class Execution(_View):
    id: str
    flow: str
    namespace: str
    flow_id: str
    revision: int
    commit: CommitRef
    source: str | None
    state: str
    trigger_kind: str | None
    trigger: str | None
    scheduled_at: str | None
    created_at: str
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    labels: dict[str, Any]
    error: str | None
    attempt: int
    original_id: str | None
    parent_execution: str | None


class TaskRun(_View):
    id: str
    task_id: str
    task_type: str
    parent_id: str | None
    value: str | None
    iteration: int | None
    attempt: int
    state: str
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    outputs: dict[str, Any]
    error: str | None


class ExecutionDetail(Execution):
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    trigger_vars: dict[str, Any]
    task_runs: list[TaskRun]


class LogLine(_View):
    id: int
    at: str
    level: str
    message: str
    task_run_id: str | None
    task_id: str | None


class Status(_View):
    """A commit status in the outbox, and what became of it."""

    id: int
    source: str | None
    commit: CommitRef
    context: str
    state: str
    description: str
    target_url: str | None
    created_at: str
    sent_at: str | None
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    outbox: str = Field(description="sent | pending | retrying | superseded | given up")


class Worker(_View):
    """A process that runs executions: the daemon, a `gitsync run`, a Celery worker."""

    id: str
    kind: str
    host: str
    pid: int
    label: str
    started_at: str
    renewed_at: str
    alive: bool


class DayCounts(_View):
    day: str
    states: dict[str, int]


class FailingFlow(_View):
    flow: str
    execution: ExecutionBrief
    error: str | None
    revision: int
    commit: CommitRef


class Dashboard(_View):
    sources: list[Source]
    failing: list[FailingFlow]
    next_fires: list[Trigger]
    executions_by_day: list[DayCounts]
    flows: int
    namespaces: int


class ExecutionCreated(_View):
    id: str
    state: str


class ExecutionAction(_View):
    id: str
    state: str


class TriggerAction(_View):
    uid: str
    paused: bool
