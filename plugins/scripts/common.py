"""What every script task shares (Kestra's `AbstractExecScript`): runner, environment, files, interpreter."""

from __future__ import annotations

import shlex
import sys
from abc import abstractmethod
from typing import Any, ClassVar, Literal

from plugins.core.namespace import load_namespace_files
from plugins.scripts.docker import DockerOptions
from plugins.scripts.execution import ScriptSpec, docker_image, env_map, execute, str_list, use_task_environment
from plugins.scripts.files import as_bool
from plugins.values import InputFiles, NamespaceFiles, StrList
from runner.api import RunContext
from runner.plugin import Kind, Shape, Task, TaskRunnerRef
from runner.types import Dyn

LOCAL_PROCESS = "gitsync runs scripts as local processes"


class ScriptTask(Task):
    """Base of script tasks; `taskRunner` is validated by its own type."""

    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {"taskRunner": ("runner", "one")}
    reports_start: ClassVar[bool] = True
    inert: ClassVar[dict[str, str]] = {
        **Task.inert,
        "containerImage": f"{LOCAL_PROCESS}; the image is used only by the Docker task runner",
        "docker": f"{LOCAL_PROCESS}; Docker options other than the image are not applied",
        "runner": "deprecated: use taskRunner (DOCKER still selects the Docker task runner)",
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

    default_image: ClassVar[str] = "ubuntu"
    """Image used by the Docker runner when no containerImage is given."""

    @abstractmethod
    def main_commands(self) -> list[str]:
        """The commands after beforeCommands (each script task type says what they are)."""
        ...

    def script_spec(self, ctx: RunContext) -> ScriptSpec:
        """The run as `execute` needs it: rendered properties coerced to their types."""
        return ScriptSpec(
            commands=self.main_commands(),
            before=str_list(self.beforeCommands),
            interpreter=str_list(self.interpreter) or ["/bin/sh", "-c"],
            fail_fast=as_bool(self.failFast, True),
            env=env_map(self.env),
            input_files=self.inputFiles,
            output_files=self.outputFiles,
            warning_on_stderr=as_bool(self.warningOnStdErr, True),
            docker_image=docker_image(self, self.default_image),
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        spec = self.script_spec(ctx)
        load_namespace_files(self.namespaceFiles, ctx.namespace_files, ctx.workdir, ctx.namespace, ctx.logger.warn)
        return execute(ctx, spec)


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

    default_image: ClassVar[str] = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"

    def script_spec(self, ctx: RunContext) -> ScriptSpec:
        spec = super().script_spec(ctx)
        spec.python = True
        spec.dependencies = str_list(self.dependencies)
        if spec.docker_image is None:
            use_task_environment(ctx, spec, self.pythonVersion)
        elif spec.dependencies:
            spec.before.insert(0, "pip install -q " + " ".join(shlex.quote(dep) for dep in spec.dependencies))
        return spec
