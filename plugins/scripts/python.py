"""Python script tasks: `Commands` (shell commands in a Python environment) and `Script` (inline Python)."""

from __future__ import annotations

from typing import ClassVar

from plugins.scripts.common import PythonOptions
from plugins.scripts.execution import ScriptSpec, str_list
from plugins.values import StrList
from runner.api import RunContext


class Commands(PythonOptions):
    """Run commands (e.g. `python main.py`) with Python and its dependencies available."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.python.Commands"

    commands: StrList
    """The commands, run in order by the interpreter (`python` is the task's Python)."""

    def main_commands(self) -> list[str]:
        return str_list(self.commands)


class Script(PythonOptions):
    """Run an inline Python script."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.python.Script"

    script: str
    """The Python source; rendered."""

    def main_commands(self) -> list[str]:
        return ["python {scratch}/main.py"]

    def script_spec(self, ctx: RunContext) -> ScriptSpec:
        spec = super().script_spec(ctx)
        spec.scratch_files["main.py"] = self.script
        return spec
