"""`Return` and the deprecated `Echo`: render a string (as an output, or into the logs)."""

from __future__ import annotations

from typing import Any, ClassVar

from plugins.core.log import log_level
from runner.api import RunContext
from runner.plugin import Task
from runner.types import Dyn, Level, LogLevel


class Return(Task):
    """Render `format` and expose it as the `value` output."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.debug.Return"
    runs_inline: ClassVar[bool] = True  # only computes: runs on the engine's thread
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.debugs.Return",)

    format: str | None = None
    """The template to render."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ctx.logger.debug(f"Return: {self.format}")
        return {"value": self.format}


class Echo(Task):
    """Deprecated (use Log): render `format` into the logs."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.debug.Echo"
    runs_inline: ClassVar[bool] = True  # only computes: runs on the engine's thread
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.debugs.Echo",)

    format: str | None = None
    """The template to render and log."""
    level: Dyn[Level] = LogLevel.INFO
    """TRACE, DEBUG, INFO, WARN or ERROR."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ctx.logger.log(log_level(self.level), self.format or "")
        return {}
