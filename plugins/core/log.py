"""`Log`: write a message to the execution's logs."""

from __future__ import annotations

from typing import Any, ClassVar

from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn, Level, LogLevel


class Log(Task):
    """Log one message, or several (a list), at a level."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.log.Log"
    runs_inline: ClassVar[bool] = True  # only computes: runs on the engine's thread
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.log.Log",)

    message: str | list[str]
    """The message (or messages) to log; rendered."""
    level: Dyn[Level] = LogLevel.INFO
    """TRACE, DEBUG, INFO, WARN or ERROR."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        level = log_level(self.level)
        for message in [self.message] if isinstance(self.message, str) else self.message:
            ctx.logger.log(level, str(message))
        return {}


def log_level(value: object) -> str:
    """The level name a logger takes (`INFO`…); a rendered expression is checked here."""
    name = str(getattr(value, "value", value)).strip().upper()
    if name not in LogLevel.__members__:
        raise TaskFailed(f"level must be one of {', '.join(LogLevel.__members__)}, got {value!r}")
    return name
