"""The script machinery shared by shell, Python, legacy and dbt tasks: a script file, a runner, files, outputs.

`execute(ctx, spec)` writes `spec`'s commands to a script in a scratch folder inside `ctx.workdir`
(`set -e` first when `fail_fast`), writes `inputFiles`, runs the script with the interpreter, stores the
`outputFiles` globs and returns Kestra's script outputs: `exitCode`, `vars`, `outputFiles`,
`stdOutLineCount`, `stdErrLineCount`. Every `kestra://` URI in the commands (and a Python Script's source) is
replaced by the path of a local copy of its file, as Kestra does (`files.LocalCopies`), so
`cat {{ outputs.t.outputFiles['f.csv'] }}` reads the file.

The interpreter is run on the script file: `/bin/sh -c` (the default) becomes `/bin/sh <script>`, which means
the same as `/bin/sh -c "<commands>"` without the argument-length limit; an interpreter not ending in `-c`
gets the script path appended.

Runners: the local process (io.kestra.plugin.core.runner.Process; the default here) or Docker
(io.kestra.plugin.scripts.runner.docker.Docker, or the deprecated `runner: DOCKER`), which needs a Docker
engine that answers `docker info` within 2 s. Without one the task fails, unless `ctx.allow_docker_fallback`,
in which case the script runs as a local process with a warning.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from plugins.scripts import venvs
from plugins.scripts.files import LocalCopies, as_list, as_map, store_output_files, write_input_files
from plugins.scripts.process import LineHook, run_process
from runner.api import RunContext, TaskFailed

PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"
CONTAINER_WORKDIR = PurePosixPath("/workdir")
DOCKER_INFO_TIMEOUT = 2.0
NO_DOCKER = (
    "no Docker engine answers; set taskRunner to io.kestra.plugin.core.runner.Process, "
    "or allow the fallback to local processes in gitsync's configuration"
)
FAILURE_TAIL = 20
COMMAND_NOT_FOUND = 127
"""The shell's exit code for a command it cannot find: a permanent failure (`TaskFailed.permanent`)."""
NOT_INSTALLED = (
    ": a command it runs is not installed where gitsync runs (install it there, or run the task in a container"
    " with the Docker task runner)"
)


@dataclass
class ScriptSpec:
    """What one script run needs, whatever the task type."""

    commands: list[str]
    before: list[str] = field(default_factory=list)
    interpreter: list[str] = field(default_factory=lambda: ["/bin/sh", "-c"])
    fail_fast: bool = True
    env: dict[str, str] = field(default_factory=dict)
    input_files: Any = None
    output_files: Any = None
    warning_on_stderr: bool = True
    docker_image: str | None = None
    """Run in this image (Docker runner); None runs a local process."""
    python: bool = False
    """Put a `python` / `python3` of the chosen interpreter first on PATH."""
    python_executable: str = sys.executable
    venv: Path | None = None
    """The task's own Python environment (`venvs`): its bin/ first on PATH, VIRTUAL_ENV, where packages go."""
    dependencies: list[str] = field(default_factory=list)
    """Python requirements: those not yet satisfied are pip-installed into `venv` before the commands."""
    scratch_files: dict[str, str] = field(default_factory=dict)
    """Extra files written in the scratch folder (e.g. the Python script); `{scratch}` in commands names it."""
    stdout_hook: LineHook | None = None


@dataclass
class Scratch:
    """A folder inside the working directory holding the generated script files, removed after the run."""

    local: Path
    visible: PurePosixPath | Path
    """Its path as the process sees it (inside the container for Docker)."""


# --- runner selection ------------------------------------------------------------------------------------


def _runner_type(task: Any) -> str | None:
    runner = getattr(task, "taskRunner", None)
    if runner is None:
        return None
    value = runner.get("type") if isinstance(runner, dict) else getattr(runner, "type", None)
    return str(value) if value else None


def docker_image(task: Any, default_image: str) -> str | None:
    """The image when the task asks for the Docker runner; None for a local process."""
    kind = _runner_type(task)
    if kind is not None:
        name = kind.rsplit(".", 1)[-1].lower()
        if name in ("process", "processtaskrunner"):
            return None
        if name not in ("docker", "dockertaskrunner"):
            raise TaskFailed(f"unknown task runner {kind!r}: use {PROCESS_RUNNER} or {DOCKER_RUNNER}")
    elif str(getattr(task, "runner", None) or "PROCESS").upper() != "DOCKER":
        return None
    return _image(task) or default_image


def _image(task: Any) -> str | None:
    runner, docker = getattr(task, "taskRunner", None), getattr(task, "docker", None)
    candidates = [
        getattr(task, "containerImage", None),
        runner.get("image") if isinstance(runner, dict) else getattr(runner, "image", None),
        getattr(docker, "image", None),
    ]
    return next((str(image) for image in candidates if image), None)


def docker_answers(timeout: float = DOCKER_INFO_TIMEOUT) -> bool:
    """True when a `docker` CLI exists and its engine answers `docker info` within `timeout` seconds."""
    exe = shutil.which("docker")
    if exe is None:
        return False
    try:
        done = subprocess.run(
            [exe, "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def resolve_runner(ctx: RunContext, spec: ScriptSpec) -> ScriptSpec:
    """Keep Docker when an engine answers; else fail, or fall back to a local process with a warning."""
    if spec.docker_image is None or docker_answers():
        return spec
    if not ctx.allow_docker_fallback:
        raise TaskFailed(NO_DOCKER)
    ctx.warn(f"no Docker engine answers: running the script as a local process instead of in {spec.docker_image}")
    spec.docker_image = None
    return spec


# --- the run ---------------------------------------------------------------------------------------------


def execute(ctx: RunContext, spec: ScriptSpec, after: Callable[[Scratch], None] | None = None) -> dict[str, Any]:
    """Run the script; return the outputs or raise TaskFailed (exit code and stderr tail) / TaskKilled."""
    spec = resolve_runner(ctx, spec)
    if not ctx.workdir.is_dir():  # the local executor made it; another may not have
        ctx.workdir.mkdir(parents=True, exist_ok=True)
    write_input_files(ctx, spec.input_files)
    copies = LocalCopies(ctx, CONTAINER_WORKDIR if spec.docker_image else ctx.workdir)
    try:
        _use_local_copies(spec, copies)
        return _execute(ctx, spec, after, copies)
    finally:
        copies.remove()


def _use_local_copies(spec: ScriptSpec, copies: LocalCopies) -> None:
    """Every kestra:// URI in the commands and the generated script files becomes a local copy's path."""
    spec.before = [copies.replace(line) for line in spec.before]
    spec.commands = [copies.replace(line) for line in spec.commands]
    spec.scratch_files = {name: copies.replace(text) for name, text in spec.scratch_files.items()}


def _execute(
    ctx: RunContext, spec: ScriptSpec, after: Callable[[Scratch], None] | None, copies: LocalCopies
) -> dict[str, Any]:
    inline = _inline_script(spec) if after is None else None
    if inline is not None:  # a plain shell script: `sh -c TEXT`, no scratch folder or script file to write
        result = run_process(ctx, inline, env=_local_env(ctx, spec), stdout_hook=spec.stdout_hook)
    else:
        scratch = _make_scratch(ctx, spec)
        try:
            if spec.python and spec.dependencies and spec.docker_image is None:
                missing = missing_dependencies(spec.python_executable, spec.dependencies, dict(ctx.env))
                spec.before[:0] = install_commands(spec, missing)
            argv, env, on_kill = _command(ctx, spec, scratch)
            result = run_process(ctx, argv, env=env, stdout_hook=spec.stdout_hook, on_kill=on_kill)
            if after is not None:
                after(scratch)
        finally:
            shutil.rmtree(scratch.local, ignore_errors=True)
    outputs: dict[str, Any] = {
        "exitCode": result.exit_code,
        "vars": result.vars,
        "stdOutLineCount": result.stdout_lines,
        "stdErrLineCount": result.stderr_lines,
    }
    if result.exit_code != 0:
        tail = "\n".join(result.stderr_tail[-FAILURE_TAIL:])
        message = f"command failed with exit code {result.exit_code}"
        not_found = result.exit_code == COMMAND_NOT_FOUND
        if not_found:
            message += NOT_INSTALLED
        raise TaskFailed(
            f"{message}; stderr (last lines):\n{tail}" if tail else message, outputs=outputs, permanent=not_found
        )
    outputs["outputFiles"] = store_output_files(ctx, spec.output_files, exclude=copies.paths)
    if spec.warning_on_stderr and result.stderr_lines:
        ctx.warn(f"{result.stderr_lines} line(s) written to stderr (warningOnStdErr)")
    return outputs


INLINE_SCRIPT_LIMIT = 64 * 1024  # well under the kernel's limit for one argument


def _inline_script(spec: ScriptSpec) -> list[str] | None:
    """argv running the script text with `… -c TEXT`, when nothing needs a file (no Python, Docker, scratch)."""
    if spec.python or spec.docker_image is not None or spec.scratch_files:
        return None
    if not spec.interpreter or spec.interpreter[-1] != "-c":
        return None
    lines = [*spec.before, *spec.commands]
    if any("{scratch}" in line for line in lines):
        return None
    text = "\n".join((["set -e"] if spec.fail_fast else []) + lines) + "\n"
    if len(text.encode()) > INLINE_SCRIPT_LIMIT:
        return None
    return [*spec.interpreter, text]


def _local_env(ctx: RunContext, spec: ScriptSpec) -> dict[str, str]:
    env = {**ctx.env, **{str(k): str(v) for k, v in spec.env.items()}, "WORKING_DIR": str(ctx.workdir)}
    env.setdefault("PATH", _default_path())
    return env


def _make_scratch(ctx: RunContext, spec: ScriptSpec) -> Scratch:
    name = f".gitsync-{ctx.task_id}-{uuid.uuid4().hex[:8]}"
    local = ctx.workdir / name
    local.mkdir()
    visible: PurePosixPath | Path = CONTAINER_WORKDIR / name if spec.docker_image else local
    for file_name, content in spec.scratch_files.items():
        (local / file_name).write_text(content, encoding="utf-8")
    return Scratch(local=local, visible=visible)


def script_text(spec: ScriptSpec, scratch: Scratch) -> str:
    lines = ["set -e"] if spec.fail_fast else []
    lines += [line.replace("{scratch}", shlex.quote(str(scratch.visible))) for line in [*spec.before, *spec.commands]]
    return "\n".join(lines) + "\n"


def interpreter_argv(interpreter: list[str], script: str) -> list[str]:
    """`sh -c` + script file -> `sh <file>`; any other interpreter gets the file appended."""
    if not interpreter:
        raise TaskFailed("interpreter must not be empty")
    if interpreter[-1] == "-c":
        return [*interpreter[:-1], script]
    return [*interpreter, script]


def _command(ctx: RunContext, spec: ScriptSpec, scratch: Scratch) -> tuple[list[str], dict[str, str], Any]:
    if spec.python:
        _python_shims(spec, scratch)
    (scratch.local / "script.sh").write_text(script_text(spec, scratch), encoding="utf-8")
    script = str(scratch.visible / "script.sh")
    task_env = {str(key): str(value) for key, value in spec.env.items()}
    if spec.docker_image is not None:
        return _docker_command(ctx, spec, script, task_env, scratch)
    env = {**ctx.env, **task_env, "WORKING_DIR": str(ctx.workdir)}
    env.setdefault("PATH", _default_path())
    if spec.python:
        env["PATH"] = f"{scratch.local / 'bin'}:{Path(spec.python_executable).parent}:{env['PATH']}"
    if spec.venv is not None and "VIRTUAL_ENV" not in task_env:
        env["VIRTUAL_ENV"] = str(spec.venv)
    return interpreter_argv(spec.interpreter, script), env, None


def _default_path() -> str:
    return os.environ.get("PATH", os.defpath)


def _python_shims(spec: ScriptSpec, scratch: Scratch) -> None:
    """`python` and `python3` in a scratch bin/ folder, running the chosen interpreter (local runs only)."""
    if spec.docker_image is not None:
        return
    bin_dir = scratch.local / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("python", "python3"):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(spec.python_executable)} "$@"\n', encoding="utf-8")
        shim.chmod(0o755)


def _docker_command(
    ctx: RunContext, spec: ScriptSpec, script: str, task_env: dict[str, str], scratch: Scratch
) -> tuple[list[str], dict[str, str], Any]:
    """`docker run …` and the environment of the docker CLI process.

    No value of the task's env is on the command line (`ps` shows it to every user): each name goes as
    `-e NAME`, which docker reads from its own environment, where the value is put. A name the docker CLI
    itself reads (PATH, HOME, DOCKER_*, proxies…) would change the CLI, so those go in an `--env-file`
    (mode 0600, in the scratch folder, removed with it after the run).
    """
    name = f"gitsync-{ctx.task_run_id}-{uuid.uuid4().hex[:6]}"
    argv = [shutil.which("docker") or "docker", "run", "--rm", "--name", name]
    argv += ["-v", f"{ctx.workdir}:{CONTAINER_WORKDIR}", "-w", str(CONTAINER_WORKDIR)]
    env = {**ctx.env}
    env.setdefault("PATH", _default_path())
    env_args, cli_values = docker_env(scratch.local, {**task_env, "WORKING_DIR": str(CONTAINER_WORKDIR)})
    argv += [*env_args, str(spec.docker_image), *interpreter_argv(spec.interpreter, script)]
    env.update(cli_values)

    def remove_container() -> None:
        subprocess.run([argv[0], "rm", "-f", name], capture_output=True, timeout=30, check=False)

    return argv, env, remove_container


DOCKER_CLI_NAMES = frozenset(
    {"PATH", "HOME", "TMPDIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR"}
)
"""Variables the docker CLI reads itself (with every DOCKER_* and XDG_*): a task's value goes in the env file."""
ENV_FILE = "docker.env"


def _cli_reads(key: str) -> bool:
    upper = key.upper()
    return upper in DOCKER_CLI_NAMES or upper.startswith(("DOCKER_", "XDG_"))


def docker_env(folder: Path, values: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The `docker run` arguments passing `values` to the container, and what goes in the CLI's environment.

    Values never appear in the arguments: `-e NAME` with the value in the CLI's environment, or, for a name
    the CLI reads itself, `--env-file <folder>/docker.env` (0600; a value there must be one line).
    """
    args: list[str] = []
    cli_values: dict[str, str] = {}
    file_lines: list[str] = []
    for key, value in values.items():
        if not key or "=" in key or "\0" in key or "\n" in key:
            raise TaskFailed(f"env name {key!r} is not a valid variable name")
        if "\0" in value:
            raise TaskFailed(f"env {key!r} holds a NUL character, which no environment can carry")
        if _cli_reads(key):
            if "\n" in value or "\r" in value:
                raise TaskFailed(
                    f"env {key!r} spans several lines: the Docker runner passes {key} through an env file, "
                    "which holds one line per variable"
                )
            file_lines.append(f"{key}={value}")
        else:
            args += ["-e", key]
            cli_values[key] = value
    if file_lines:
        path = folder / ENV_FILE
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write("\n".join(file_lines) + "\n")
        args = ["--env-file", str(path), *args]
    return args, cli_values


# --- python ----------------------------------------------------------------------------------------------

_CHECK_DEPENDENCIES = r"""
import json, re, sys
from importlib import metadata
missing = []
for spec in json.loads(sys.argv[1]):
    name = re.split(r"[\s\[<>=!~;@(]", spec.strip(), maxsplit=1)[0]
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        missing.append(spec)
        continue
    try:
        from packaging.requirements import Requirement
    except ImportError:
        continue
    try:
        wanted = Requirement(spec).specifier
    except Exception:
        continue
    if wanted and not wanted.contains(version, prereleases=True):
        missing.append(spec)
print(json.dumps(missing))
"""


def missing_dependencies(python: str, dependencies: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The requirements not satisfied in the environment of `python` (run with the task's `env`, never the
    service's own PYTHONPATH)."""
    wanted = [dep for dep in dependencies if dep.strip()]
    if not wanted:
        return []
    done = subprocess.run(
        [python, "-c", _CHECK_DEPENDENCIES, json.dumps(wanted)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env if env is not None else {"PATH": _default_path()},
    )
    if done.returncode != 0:
        raise TaskFailed(f"could not check the Python dependencies with {python}: {done.stderr.strip()[-500:]}")
    return [str(item) for item in json.loads(done.stdout)]


def install_commands(spec: ScriptSpec, missing: list[str]) -> list[str]:
    """`pip install` of the missing requirements into the task's environment, run first by the script (so it is
    logged, killed and timed out with it). Never into an environment that is not the task's own."""
    if not missing:
        return []
    if spec.venv is None:
        raise TaskFailed(
            f"Python dependencies not installed: {', '.join(missing)}; this task has no environment of its own to "
            "install them in"
        )
    python = shlex.quote(str(spec.venv / "bin" / "python"))
    quoted = " ".join(shlex.quote(dep) for dep in missing)
    return [f"{python} -m pip install --quiet --disable-pip-version-check {quoted}"]


def use_task_environment(ctx: RunContext, spec: ScriptSpec, version: str | None) -> None:
    """Run `spec` with the task's Python environment (`venvs`), never gitsync's own: its interpreter, and its
    `bin/` first on PATH with VIRTUAL_ENV naming it."""
    root = venvs.environment(ctx, venvs.interpreter(ctx, version))
    spec.python_executable = str(root / "bin" / "python")
    spec.venv = root


def env_map(value: Any) -> dict[str, str]:
    return {str(key): "" if item is None else str(item) for key, item in as_map(value, "env").items()}


def str_list(value: Any) -> list[str]:
    return as_list(value)
