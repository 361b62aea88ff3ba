"""The pre-0.11 core script tasks, `io.kestra.core.tasks.scripts.Bash` and `.Python` (real classes, not aliases)."""

from __future__ import annotations

from typing import ClassVar, Literal

from plugins.scripts.docker import LegacyDockerOptions
from plugins.values import InputFiles
from runner.plugin import Task

_DOCKER = "gitsync runs scripts as local processes; Docker options are not applied"


class _LegacyScript(Task):
    inert: ClassVar[dict[str, str]] = {**Task.inert, "dockerOptions": _DOCKER}

    interpreter: str = "/bin/sh"
    """The interpreter."""
    interpreterArgs: list[str] = ["-c"]
    """Arguments given to the interpreter before the script."""
    exitOnFailed: bool = True
    """Stop at the first failing command (`set -e`)."""
    inputFiles: InputFiles | None = None
    """Files created in the working directory: name -> content or URI."""
    outputFiles: list[str] | None = None
    """Names of files whose URI is exposed in the `outputFiles` output."""
    outputsFiles: list[str] | None = None
    """Deprecated name of outputFiles."""
    outputDirs: list[str] | None = None
    """Directories whose files are sent to storage."""
    files: list[str] | None = None
    """Deprecated name of outputFiles."""
    env: dict[str, str] | None = None
    """Extra environment variables."""
    runner: Literal["PROCESS", "DOCKER"] = "PROCESS"
    """Where to run (only PROCESS is honoured)."""
    dockerOptions: LegacyDockerOptions | None = None
    """Options of the DOCKER runner."""
    warningOnStdErr: bool = True
    """End in WARNING when anything is written to stderr."""


class Bash(_LegacyScript):
    """Deprecated (use io.kestra.plugin.scripts.shell.Commands): run shell commands."""

    type_name: ClassVar[str] = "io.kestra.core.tasks.scripts.Bash"

    commands: list[str]
    """The commands."""


class Python(_LegacyScript):
    """Deprecated (use io.kestra.plugin.scripts.python.*): run `main.py` from inputFiles in a virtualenv."""

    type_name: ClassVar[str] = "io.kestra.core.tasks.scripts.Python"

    commands: list[str] = ["./bin/python main.py"]
    """The commands (run main.py by default)."""
    pythonPath: str = "python"
    """The python interpreter used to create the virtualenv."""
    requirements: list[str] | None = None
    """pip requirements installed in the virtualenv."""
    virtualEnv: bool = True
    """Create a virtualenv for the run."""
