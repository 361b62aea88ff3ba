"""The plugin contract: a task, trigger, condition or task runner type is a pydantic model class.

A class names its canonical Kestra type (`type_name`), the legacy names that still resolve to it
(`aliases`), and where plugins of other kinds nest inside it (`plugin_slots`: a Sequential holds
tasks, a Schedule holds conditions, a script task holds a task runner). The validator walks those
slots itself, so a nested task is validated by its own class, whatever registry is in use.

pydantic builds each model's validator when it is first used (`defer_build`), not when its module is imported:
a command builds only the models of the types its flows use. The docstring under a field is its description in
`gitsync schema` (read there, `gitsync.flows.schema`).
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from runner.types import Duration, DynDuration, Labels, Level, TaskId

Kind = Literal["task", "trigger", "condition", "runner"]
Shape = Literal["list", "one", "map", "map_of_lists"]
Path = tuple[str | int, ...]
SCHEMA_REF = "x-gitsync-plugin-kind"
"""Marks where a schema refers to a plugin kind's definition; gitsync.schema turns it into a $ref."""


def _list_of_mappings(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, list):
        raise ValueError("must be a list of tasks")
    return value


TaskList = Annotated[
    list[Any], BeforeValidator(_list_of_mappings), WithJsonSchema({"type": "array", "items": {SCHEMA_REF: "task"}})
]
"""A list of tasks; each item is validated by the class its `type` names (see `plugin_slots`)."""
ConditionList = Annotated[
    list[Any], BeforeValidator(_list_of_mappings), WithJsonSchema({"type": "array", "items": {SCHEMA_REF: "condition"}})
]
TriggerList = Annotated[
    list[Any], BeforeValidator(_list_of_mappings), WithJsonSchema({"type": "array", "items": {SCHEMA_REF: "trigger"}})
]
TaskRef = Annotated[Any, WithJsonSchema({SCHEMA_REF: "task"})]
TaskRunnerRef = Annotated[Any, WithJsonSchema({SCHEMA_REF: "runner"})]
ConditionMap = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "additionalProperties": {SCHEMA_REF: "condition"}})
]
TaskListMap = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "additionalProperties": {"type": "array", "items": {SCHEMA_REF: "task"}}}),
]


class Plugin(BaseModel):
    """Base of every typed block in a flow (`type:` names its class)."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        populate_by_name=True,
        coerce_numbers_to_str=True,
        arbitrary_types_allowed=True,
    )

    kind: ClassVar[Kind]
    type_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {}
    inert: ClassVar[dict[str, str]] = {}
    """Properties accepted for compatibility but not acted on: property -> why (a warning, not an error)."""

    type: str

    @classmethod
    def nested_plugin_paths(cls, raw: dict[str, Any]) -> Iterator[tuple[Path, Kind]]:
        """Where plugins of other kinds sit inside `raw` (a path to each mapping), by `plugin_slots`."""
        for name, (kind, shape) in cls.plugin_slots.items():
            value = raw.get(name)
            if shape == "list" and isinstance(value, list):
                for i in range(len(value)):
                    yield (name, i), kind
            elif shape == "one" and isinstance(value, dict):
                yield (name,), kind
            elif shape == "map" and isinstance(value, dict):
                for key in value:
                    yield (name, key), kind
            elif shape == "map_of_lists" and isinstance(value, dict):
                for key, items in value.items():
                    if isinstance(items, list):
                        for i in range(len(items)):
                            yield (name, key, i), kind


class RetryType(StrEnum):
    constant = "constant"
    exponential = "exponential"
    random = "random"


class RetryBehavior(StrEnum):
    RETRY_FAILED_TASK = "RETRY_FAILED_TASK"
    CREATE_NEW_EXECUTION = "CREATE_NEW_EXECUTION"


class _RetryBase(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True)

    maxAttempts: int | None = Field(default=None, ge=1, validation_alias=AliasChoices("maxAttempts", "maxAttempt"))
    """How many attempts in all (the first run included)."""
    maxDuration: Duration | None = None
    """Total time budget for retries."""
    warningOnRetry: bool = False
    """End in WARNING when the task only succeeded after a retry."""
    behavior: RetryBehavior = RetryBehavior.RETRY_FAILED_TASK
    retryPermanentErrors: bool = False
    """gitsync: retry permanent errors too (an HTTP 4xx other than 408/429, a refused connection, an unknown host,
    a command that is not installed). By default they end the task at once, since trying again fails the same way."""


class ConstantRetry(_RetryBase):
    type: Literal["constant"]
    interval: Duration


class ExponentialRetry(_RetryBase):
    type: Literal["exponential"]
    interval: Duration
    maxInterval: Duration
    delayFactor: float | None = None


class RandomRetry(_RetryBase):
    type: Literal["random"]
    minInterval: Duration
    maxInterval: Duration


def _lower_type(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return {**value, "type": value["type"].lower()}
    return value


Retry = Annotated[
    ConstantRetry | ExponentialRetry | RandomRetry,
    Field(discriminator="type"),
    BeforeValidator(_lower_type),
]


class WorkerGroup(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    key: str | None = None
    fallback: Literal["FAIL", "WAIT", "CANCEL"] | None = None


class TaskCache(BaseModel):
    """`taskCache` (Kestra 0.24+): reuse the outputs of an earlier run of the task with the same rendered
    properties, for runnable tasks."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    enabled: bool
    ttl: Duration | None = None
    """How long an entry is used (ISO-8601, e.g. PT24H); without it, entries do not expire."""


class Task(Plugin):
    """Common properties of every task (KESTRA_SPEC §5)."""

    kind: ClassVar[Kind] = "task"
    flowable: ClassVar[bool] = False
    """Decided by the engine (the class has `decide(ctx, scope, record)`), not handed to an executor."""
    reports_start: ClassVar[bool] = False
    """The task calls `ctx.mark_started()` itself once its work has begun (a script: its process started), so that its
    start is recorded while the process runs; any other task is started when its `run` is called."""
    runs_inline: ClassVar[bool] = False
    """The task only computes (no process, file, network or working directory): it runs on the engine's
    thread without a hop to a worker, its transitions are written in one batch, and it gets no working
    directory."""
    reads_execution: ClassVar[bool] = False
    """The task reports on an execution (the notification `*Execution` tasks): the engine puts the one its rendered
    `executionId` names (its own by default) in `RunContext.execution`, read from memory or from the control plane."""
    replayed_whole: ClassVar[bool] = False
    """A flowable whose tasks share what they leave on disk (WorkingDirectory): a replay that runs anything inside
    it again runs it again whole, none of its tasks carried over (`runner.engine.replay`)."""
    inert: ClassVar[dict[str, str]] = {
        "logToFile": "logs are kept in gitsync's database",
        "version": "plugin versions are fixed by the installed package",
        "workerSelector": "worker selection is an Enterprise feature; use workerGroup to pick a Celery queue",
        "assets": "asset lineage is not tracked by gitsync",
    }

    id: TaskId
    """Unique within the flow; letters, digits, '_' and '-'."""
    description: str | None = None
    retry: Retry | None = None
    timeout: DynDuration | None = None
    """Maximum duration of one attempt; the task run fails after it."""
    disabled: bool = False
    """A disabled task is skipped entirely."""
    workerGroup: WorkerGroup | None = None
    """Picks the Celery queue when the Celery executor is used."""
    logLevel: Level | None = None
    allowFailure: bool = False
    allowWarning: bool = False
    logToFile: bool = False
    runIf: str | bool = "true"
    """Expression; a falsy result skips the task (state SKIPPED)."""
    version: str | None = None
    workerSelector: dict[str, Any] | None = None
    assets: dict[str, Any] | None = None
    taskCache: TaskCache | None = None
    """Reuse an earlier run's outputs (runnable tasks only; a flowable task is always decided)."""

    def render_variables(self, workdir: str) -> dict[str, Any]:
        """Variables this task adds while its own properties are rendered, besides the engine's (which win on a
        clash); `workdir` is the task run's working directory. None by default; the legacy script tasks give
        `outputFiles.<name>` and `outputDirs.<name>`, paths in `workdir` (Kestra's `AbstractBash`)."""
        return {}


class FlowableTask(Task):
    """A task the engine decides itself (its children run as their own task runs)."""

    flowable: ClassVar[bool] = True
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {
        "tasks": ("task", "list"),
        "errors": ("task", "list"),
        "finally": ("task", "list"),
    }

    errors: TaskList | None = None
    """Tasks run when a child fails."""
    finally_: TaskList | None = Field(default=None, alias="finally")
    """Tasks always run at the end of this flowable."""


class Trigger(Plugin):
    """Common properties of every trigger (KESTRA_SPEC §9)."""

    kind: ClassVar[Kind] = "trigger"
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"conditions": ("condition", "list")}
    inert: ClassVar[dict[str, str]] = {"logToFile": "logs are kept in gitsync's database"}

    id: TaskId
    description: str | None = None
    conditions: ConditionList | None = None
    when: str | bool | None = None
    """An expression (Kestra 2.0's replacement of `conditions`, ANDed with them here): the trigger fires only when
    it renders true. It reads `trigger.*` (a Schedule's date, a Webhook's body, headers and parameters, a Flow
    trigger's upstream execution, whose namespace, flowId, state, labels, outputs and hasRetryAttempt are also
    top-level names)."""
    disabled: bool = False
    workerGroup: WorkerGroup | None = None
    logLevel: Level | None = Field(default=None, validation_alias=AliasChoices("logLevel", "minLogLevel"))
    labels: Labels | None = None
    stopAfter: list[str] | None = None
    logToFile: bool = False


class ExecutionEvent(Protocol):
    """The end of an upstream execution, as the conditions of a Flow trigger see it."""

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the upstream execution: executionId, namespace, flowId, flowRevision, state, outputs,
        labels, retriedAttemptStates (the states of every attempt of its retried task runs); `listening` holds the
        namespace and flowId of the flow whose trigger is judged. For a Schedule's fire: date, next, previous."""
        ...

    @property
    def can_evaluate(self) -> bool:
        """Whether expressions can be evaluated (an expression condition holds when they cannot)."""
        ...

    def evaluate(self, expression: str) -> Any:
        """The value of an expression, with the event as `trigger`; raises a GitSyncError (RenderError,
        ExpressionError) when it cannot be evaluated, and the condition then does not hold."""
        ...

    def holds(self, condition: Any) -> bool:
        """Whether a nested condition (a mapping with its `type`) holds for this event."""
        ...


class Condition(Plugin):
    """A condition on a trigger (ANDed with its siblings)."""

    kind: ClassVar[Kind] = "condition"
    schedule_condition: ClassVar[bool] = False
    """It judges a Schedule's fire (Kestra's ScheduleCondition: the date conditions, Expression, Not, Or); the
    others are left out of a Schedule's conditions, as Kestra does."""

    def matches(self, event: ExecutionEvent) -> bool:
        """Whether this condition lets the trigger fire for `event` (an upstream end, or a Schedule's fire). A
        condition that cannot judge raises a GitSyncError, which the caller logs: the trigger does not fire."""
        return True


class TaskRunner(Plugin):
    """Where a script task runs (`taskRunner.type`)."""

    kind: ClassVar[Kind] = "runner"
