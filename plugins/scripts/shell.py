"""Shell script tasks: `Commands` (a list of commands) and `Script` (one inline script)."""

from __future__ import annotations

from typing import ClassVar

from plugins.scripts.common import ScriptTask
from plugins.values import StrList


class Commands(ScriptTask):
    """Run shell commands."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.shell.Commands"

    commands: StrList
    """The commands, run in order by the interpreter."""


class Script(ScriptTask):
    """Run an inline shell script."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.shell.Script"

    script: str
    """The script's content; rendered."""
