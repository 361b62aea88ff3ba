"""Python script tasks: `Commands` (shell commands in a Python environment) and `Script` (inline Python)."""

from __future__ import annotations

from typing import ClassVar

from plugins.scripts.common import PythonOptions
from plugins.values import StrList


class Commands(PythonOptions):
    """Run commands (e.g. `python main.py`) with Python and its dependencies available."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.python.Commands"

    commands: StrList
    """The commands, run in order by the interpreter."""


class Script(PythonOptions):
    """Run an inline Python script."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.python.Script"

    script: str
    """The Python source; rendered."""
