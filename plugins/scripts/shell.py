"""Shell script tasks: `Commands` (a list of commands) and `Script` (one inline script)."""

from __future__ import annotations

from typing import ClassVar

from plugins.scripts.common import ScriptTask
from plugins.scripts.execution import str_list
from plugins.values import StrList


class Commands(ScriptTask):
    """Run shell commands."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.shell.Commands"

    commands: StrList
    """The commands, run in order by the interpreter."""

    def main_commands(self) -> list[str]:
        return str_list(self.commands)


class Script(ScriptTask):
    """Run an inline shell script."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.shell.Script"

    script: str
    """The script's content; rendered."""

    def main_commands(self) -> list[str]:
        return [self.script]
