"""The flow document (KESTRA_SPEC §1): top-level keys, validated strictly like Kestra's parser.

Nested tasks, triggers and conditions are validated by `runner.validate`, each by the class its
`type` names; on this model they hold the validated plugin instances afterwards.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from runner.inputs import Input
from runner.plugin import Retry, TaskList, TriggerList
from runner.types import Duration, FlowId, InputId, Labels, Namespace


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True, coerce_numbers_to_str=True)


class PluginDefault(_Strict):
    type: str
    """A type name, or a package prefix such as io.kestra.plugin.jdbc.postgresql."""
    values: dict[str, Any]
    forced: bool = False
    """Forced defaults override what a task sets itself."""


class ConcurrencyBehavior(StrEnum):
    QUEUE = "QUEUE"
    CANCEL = "CANCEL"
    FAIL = "FAIL"


class Concurrency(_Strict):
    limit: int = Field(gt=0)
    behavior: ConcurrencyBehavior = ConcurrencyBehavior.QUEUE


OutputType = Literal[
    "STRING", "ENUM", "SELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME", "DURATION", "FILE",
    "JSON", "URI", "SECRET", "ARRAY", "MULTISELECT", "YAML", "EMAIL",
]  # fmt: skip
"""Kestra's input and output types (`Type`); written in any case."""


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class FlowOutput(_Strict):
    id: InputId
    type: Annotated[OutputType, BeforeValidator(_upper)] = "STRING"
    """The value is coerced to this type as an input of the type would be; a STRING is text (a map or list as JSON)."""
    value: Any
    description: str | None = None
    displayName: str | None = None
    required: bool | None = None


class Sla(_Strict):
    id: str
    type: Literal["MAX_DURATION", "EXECUTION_ASSERTION"]
    duration: Duration | None = None
    assert_: str | None = Field(default=None, alias="assert")
    behavior: Literal["FAIL", "CANCEL", "NONE"] = "FAIL"
    labels: Labels | None = None

    @model_validator(mode="after")
    def _needs_its_property(self) -> Sla:
        if self.type == "MAX_DURATION" and self.duration is None:
            raise ValueError("a MAX_DURATION SLA needs a duration (e.g. duration: PT1H)")
        if self.type == "EXECUTION_ASSERTION" and not self.assert_:
            raise ValueError('an EXECUTION_ASSERTION SLA needs an assert expression (e.g. assert: "{{ ... }}")')
        return self


class Check(_Strict):
    condition: str = Field(validation_alias=AliasChoices("condition", "when"))
    message: str
    style: Literal["ERROR", "SUCCESS", "WARNING", "INFO"] = "INFO"
    behavior: Literal["BLOCK_EXECUTION", "FAIL_EXECUTION", "CREATE_EXECUTION"] = "BLOCK_EXECUTION"


class Listener(_Strict):
    conditions: list[Any] | None = None
    tasks: TaskList | None = None
    description: str | None = None


class Flow(_Strict):
    """One flow file. `namespace.id` is its uid."""

    inert: ClassVar[dict[str, str]] = {
        "checks": "checks are not evaluated by gitsync yet",
        "listeners": "listeners are deprecated since Kestra 0.12 and are not run",
        "workerSelector": "worker selection is an Enterprise feature; use workerGroup on tasks",
        "tenantId": "gitsync has no tenants",
        "revision": "revisions are assigned by gitsync from git history",
        "deleted": "a flow is deleted by removing its file from git",
    }

    id: FlowId
    namespace: Namespace
    revision: int | None = None
    description: str | None = None
    labels: Labels | None = None
    inputs: list[Input] | None = None
    variables: dict[str, Any] | None = None
    tasks: TaskList = Field(min_length=1)
    errors: TaskList | None = None
    finally_: TaskList | None = Field(default=None, alias="finally")
    afterExecution: TaskList | None = None
    listeners: list[Listener] | None = None
    triggers: TriggerList | None = None
    pluginDefaults: list[PluginDefault] | None = Field(
        default=None, validation_alias=AliasChoices("pluginDefaults", "taskDefaults")
    )
    concurrency: Concurrency | None = None
    outputs: list[FlowOutput] | None = None
    retry: Retry | None = None
    sla: list[Sla] | None = None
    checks: list[Check] | None = None
    disabled: bool = False
    deleted: bool = False
    tenantId: str | None = None
    workerSelector: dict[str, Any] | None = None

    @property
    def uid(self) -> str:
        return f"{self.namespace}.{self.id}"
