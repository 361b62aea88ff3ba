"""`OutputValues`: expose rendered values as task outputs."""

from __future__ import annotations

from typing import Any, ClassVar

from plugins.core._props import as_map
from runner.api import RunContext
from runner.plugin import Task


class OutputValues(Task):
    """Render each value of the map and expose it as `outputs.<id>.values.<key>`."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.output.OutputValues"
    runs_inline: ClassVar[bool] = True  # only computes: runs on the engine's thread

    values: dict[str, Any] | None = None
    """Key -> value (rendered)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return {"values": as_map(self.values, "values")}
