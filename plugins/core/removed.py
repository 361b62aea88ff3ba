"""Types Kestra removed, refused by `validate` with what to use instead (they are known, so the message is this one
and not "unknown type"): `flow.Template` (templates, deprecated in 0.11 and removed in 2.0) and the Nashorn script
tasks (the JavaScript engine left the JDK in Java 15)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, model_validator

from runner.api import RunContext, TaskFailed
from runner.plugin import Task


class _Removed(Task):
    model_config = ConfigDict(extra="allow")  # any properties: the refusal, not a property error, is what matters
    refusal: ClassVar[str] = ""

    @model_validator(mode="after")
    def _refuse(self) -> _Removed:
        raise ValueError(self.refusal)

    def run(self, ctx: RunContext) -> dict[str, Any]:  # never reached: the flow does not validate
        raise TaskFailed(self.refusal, permanent=True)


class Template(_Removed):
    """Removed by Kestra: include a template's tasks (use a Subflow)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Template"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.Template",)
    refusal: ClassVar[str] = (
        "templates were deprecated in Kestra 0.11 and removed in 2.0, and gitsync does not have them: move the "
        "template's tasks into a flow of their own and call it with io.kestra.plugin.core.flow.Subflow "
        "(namespace, flowId, inputs instead of args)"
    )


class FileTransform(_Removed):
    """Removed by Kestra: transform a row file with Nashorn JavaScript."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.nashorn.FileTransform"
    refusal: ClassVar[str] = (
        "Nashorn (JavaScript on the JVM) script tasks are not supported: the engine left Java in version 15 and "
        "Kestra removed the tasks. Transform the rows with io.kestra.plugin.scripts.python.Script, or with "
        "io.kestra.plugin.core.storage.FilterItems for a filter"
    )
