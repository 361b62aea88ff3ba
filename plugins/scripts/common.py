"""What every script task shares (Kestra's `AbstractExecScript`): runner, environment, files, interpreter."""

from __future__ import annotations

from typing import ClassVar, Literal

from plugins.scripts.docker import DockerOptions
from plugins.values import InputFiles, NamespaceFiles, StrList
from runner.plugin import Kind, Shape, Task, TaskRunnerRef
from runner.types import Dyn

LOCAL_PROCESS = "gitsync runs scripts as local processes"


class ScriptTask(Task):
    """Base of script tasks; `taskRunner` is validated by its own type."""

    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"taskRunner": ("runner", "one")}
    inert: ClassVar[dict[str, str]] = {
        **Task.inert,
        "containerImage": f"{LOCAL_PROCESS}; no container image is used",
        "docker": f"{LOCAL_PROCESS}; Docker options are not applied",
        "runner": f"{LOCAL_PROCESS}; the deprecated runner type is ignored",
        "namespaceFiles": "gitsync has no namespace file store",
    }

    taskRunner: TaskRunnerRef | None = None
    """Where the commands run (a task runner type and its options)."""
    containerImage: str | None = None
    """Container image, for container-based task runners."""
    beforeCommands: StrList | None = None
    """Commands run before the main ones (e.g. installing dependencies)."""
    env: Dyn[dict[str, str]] | None = None
    """Extra environment variables."""
    interpreter: StrList | None = None
    """Interpreter and its arguments (/bin/sh -c by default)."""
    failFast: Dyn[bool] = True
    """Stop at the first failing command (`set -e`)."""
    warningOnStdErr: Dyn[bool] = True
    """End in WARNING when anything is written to stderr."""
    targetOS: Dyn[Literal["LINUX", "WINDOWS", "AUTO"]] = "AUTO"
    """Operating system the commands are written for."""
    namespaceFiles: NamespaceFiles | None = None
    """Namespace files copied into the working directory."""
    inputFiles: InputFiles | None = None
    """Files created in the working directory: name -> content or URI."""
    outputFiles: StrList | None = None
    """Glob patterns of files sent to storage (the `outputFiles` output)."""
    outputDirectory: Dyn[bool] | None = None
    """Deprecated: enable `{{ outputDir }}` (use outputFiles)."""
    runner: Literal["PROCESS", "DOCKER"] | None = None
    """Deprecated: use taskRunner."""
    docker: DockerOptions | None = None
    """Deprecated: use taskRunner with the Docker type."""


class PythonOptions(ScriptTask):
    """Python-specific options on top of the script task ones."""

    dependencies: StrList | None = None
    """pip requirement specifiers installed before the run."""
    pythonVersion: str | None = None
    """Python version to use (e.g. 3.12)."""
    packageManager: Dyn[Literal["UV", "PIP"]] = "UV"
    """Tool used to install `dependencies`."""
    dependencyCacheEnabled: Dyn[bool] = True
    """Cache installed dependencies between runs."""
