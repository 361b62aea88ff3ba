"""`Log`: write a message to the execution's logs."""

from __future__ import annotations

from typing import ClassVar

from runner.plugin import Task
from runner.types import Dyn, Level, LogLevel


class Log(Task):
    """Log one message, or several (a list), at a level."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.log.Log"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.log.Log",)

    message: str | list[str]
    """The message (or messages) to log; rendered."""
    level: Dyn[Level] = LogLevel.INFO
    """TRACE, DEBUG, INFO, WARN or ERROR."""
