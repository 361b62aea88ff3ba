"""The pre-0.11 core script tasks, `io.kestra.core.tasks.scripts.Bash` and `.Python` (real classes, not aliases).

As in Kestra's `AbstractBash`: each name of `outputFiles` (and its deprecated spellings) is a file of the working
directory, created empty before the run and named in the commands by `{{ outputFiles.<name> }}` (also
`{{ temp.<name> }}`); each name of `outputDirs` is a folder, `{{ outputDirs.<name> }}`. After the run the files
and every file under the folders are stored: `outputs.<task>.outputFiles.<name>` (and `files`). The legacy
Python task writes the `kestra` module beside `main.py`, so a script sends outputs and metrics with
`from kestra import Kestra; Kestra.outputs({...})`, and appends `args` to each command.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import replace
from typing import Any, ClassVar, Literal

from plugins.scripts.docker import LegacyDockerOptions
from plugins.scripts.execution import ScriptSpec, docker_image, env_map, execute, use_task_environment
from plugins.scripts.files import as_map, inside, store_output_files
from plugins.values import InputFiles
from runner.api import RunContext, TaskFailed
from runner.plugin import Task

_DOCKER = "gitsync runs scripts as local processes; Docker options are not applied"


class _LegacyScript(Task):
    inert: ClassVar[dict[str, str]] = {**Task.inert, "dockerOptions": _DOCKER}
    reports_start: ClassVar[bool] = True

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

    def _declared(self) -> list[str]:
        return list(dict.fromkeys([*(self.outputFiles or []), *(self.outputsFiles or []), *(self.files or [])]))

    def render_variables(self, workdir: str) -> dict[str, Any]:
        files = {name: f"{workdir}/{name}" for name in self._declared() if "{{" not in name}
        folders = {name: f"{workdir}/{name}" for name in self.outputDirs or [] if "{{" not in name}
        return {"outputFiles": files, "temp": files, "outputDirs": folders}

    def script_spec(self, ctx: RunContext) -> ScriptSpec:
        for folder in self.outputDirs or []:
            inside(ctx.workdir, folder, "outputDirs").mkdir(parents=True, exist_ok=True)
        for name in self._declared():
            path = inside(ctx.workdir, name, "outputFiles")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        return ScriptSpec(
            commands=list(self.commands),  # type: ignore[attr-defined]
            interpreter=[self.interpreter, *self.interpreterArgs],
            fail_fast=self.exitOnFailed,
            env=env_map(self.env),
            input_files=self.inputFiles,
            warning_on_stderr=self.warningOnStdErr,
            docker_image=docker_image(self, (self.dockerOptions.image if self.dockerOptions else None) or "ubuntu"),
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        outputs = execute(ctx, self.script_spec(ctx))
        stored = self._store_declared(ctx)
        return {**outputs, "outputFiles": stored, "files": stored}

    def _store_declared(self, ctx: RunContext) -> dict[str, str]:
        """Declared output names (files in the working directory) and every file under outputDirs."""
        stored: dict[str, str] = {}
        for name in self._declared():
            path = inside(ctx.workdir, name, "outputFiles")
            if path.is_file() and name not in stored:
                stored[name] = ctx.storage.put(path, name)
        for folder in self.outputDirs or []:
            stored.update(store_output_files(ctx, [f"{folder.rstrip('/')}/**/*"]))
        return stored


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
    args: list[str] | None = None
    """Arguments appended to each command (`./bin/python main.py ARGS`)."""

    def script_spec(self, ctx: RunContext) -> ScriptSpec:
        spec = super().script_spec(ctx)
        if self.args:
            suffix = " " + " ".join(self.args)
            spec.commands = [command + suffix for command in spec.commands]
        if "kestra.py" not in as_map(self.inputFiles, "inputFiles"):
            (ctx.workdir / "kestra.py").write_text(KESTRA_MODULE, encoding="utf-8")
        if spec.docker_image is not None:
            return spec
        spec.python = True
        python_path = self.pythonPath
        if python_path not in ("python", "python3"):  # another interpreter than tasks.python
            found = shutil.which(python_path, path=ctx.env.get("PATH"))
            if found is None:
                raise TaskFailed(f"pythonPath {python_path!r} is not found on the task's PATH")
            ctx = replace(ctx, python=found)
        use_task_environment(ctx, spec, None)
        spec.dependencies = list(self.requirements or [])
        if self.virtualEnv:
            _bin_python_shim(ctx, spec.python_executable)
        return spec


def _bin_python_shim(ctx: RunContext, python: str) -> None:
    """`./bin/python` in the working directory, where the legacy task's virtualenv put it, running the task's
    environment (`venvs`)."""
    shim = ctx.workdir / "bin" / "python"
    if shim.exists():
        return
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(python)} "$@"\n', encoding="utf-8")
    shim.chmod(0o755)


KESTRA_MODULE = '''"""The `kestra` module of Kestra's legacy Python task: outputs and metrics sent on stdout."""

import json
import time


class Kestra:
    """Send outputs (`outputs.<task>.vars`) and metrics to the task run, as `::{json}::` lines."""

    @staticmethod
    def _send(payload):
        print("::" + json.dumps(payload) + "::", flush=True)

    @staticmethod
    def outputs(values):
        Kestra._send({"outputs": values})

    @staticmethod
    def _metric(name, kind, value, tags=None):
        Kestra._send({"metrics": [{"name": name, "type": kind, "value": value, "tags": tags or {}}]})

    @staticmethod
    def counter(name, value, tags=None):
        Kestra._metric(name, "counter", value, tags)

    @staticmethod
    def timer(name, duration, tags=None):
        """`duration` in seconds, or a function whose run is timed."""
        if callable(duration):
            start = time.monotonic()
            duration()
            duration = time.monotonic() - start
        Kestra._metric(name, "timer", duration, tags)
'''
