"""dbt tasks: `DbtCLI` (any dbt commands) and the older single-command `Build`, `Run`, `Test`, `Deps`.

`projectDir` is resolved so: an absolute path is used as is; a relative one is looked up first in the task's
working directory (Kestra's meaning: a project cloned there by git Clone, or given by inputFiles, in a
WorkingDirectory) and then against gitsync's own working directory (the folder the daemon was started in, e.g.
the repository holding `examples/dbt/shop`). A project outside the task's working directory is copied into it
(without target/, logs/, dbt_packages/) so that dbt's outputs never land in the source folder and concurrent
runs never share one. No projectDir means the working directory itself.

dbt runs through the script machinery (local process or Docker runner) with DBT_PROFILES_DIR (the inline
`profiles` written to a folder of its own), DBT_PROJECT_DIR and DBT_SEND_ANONYMOUS_USAGE_STATS=false; the `dbt`
of gitsync's Python environment comes first on PATH. With logFormat JSON (the default) every dbt command gets
`--log-format json` and each JSON log line is logged at its own level. With parseRunResults, target/run_results.json
and manifest.json are stored (outputFiles) and summarised in the `runResults` output, one log line per node.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import uuid
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

from plugins.core.namespace import load_namespace_files
from plugins.scripts.common import LOCAL_PROCESS, ScriptTask
from plugins.scripts.docker import LegacyDockerOptions
from plugins.scripts.execution import CONTAINER_WORKDIR, ScriptSpec, execute
from plugins.scripts.files import as_bool, as_list
from plugins.values import Options, StrList
from runner.api import MISSING, RunContext, TaskFailed
from runner.types import Dyn

DBT_IMAGE = "ghcr.io/kestra-io/dbt-duckdb:latest"
DBT_FUSION_IMAGE = "ghcr.io/kestra-io/dbt-fusion"
_SKIP_ON_COPY = shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml", "__pycache__")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARN", "warning": "WARN", "error": "ERROR"}


class ManifestKey(Options):
    """Where manifest.json is kept in the KV store."""

    key: str
    namespace: str | None = None


class _Dbt(ScriptTask):
    inert: ClassVar[dict[str, str]] = {
        **ScriptTask.inert,
        "dockerOptions": f"{LOCAL_PROCESS}; Docker options are not applied",
    }

    profiles: str | None = None
    """Content of profiles.yml."""
    projectDir: str | None = None
    """Folder of dbt_project.yml, relative to the working directory."""
    dbtPath: str = "./bin/dbt"
    """The dbt executable."""
    debug: Dyn[bool] = False
    """Run dbt with --debug."""
    failFast: Dyn[bool] = False
    """Stop at the first failure (--fail-fast)."""
    warnError: Dyn[bool] = False
    """Treat warnings as errors."""
    noVersionCheck: Dyn[bool] = False
    """Skip the dbt version check."""
    subcommand: ClassVar[str] = ""
    parseRunResults: Dyn[bool] = True
    """Parse run_results.json and manifest.json into outputs and metrics."""
    dockerOptions: LegacyDockerOptions | None = None
    """Deprecated name of `docker`."""

    default_image: ClassVar[str] = DBT_IMAGE

    def dbt_commands(self, ctx: RunContext) -> list[str]:
        """The commands to run (each dbt task type says which)."""
        raise NotImplementedError

    def log_format(self) -> str:
        return "DEFAULT"

    def main_commands(self) -> list[str]:
        return []  # set by run() from dbt_commands()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        load_namespace_files(self.namespaceFiles, ctx.namespace_files, ctx.workdir, ctx.namespace, ctx.logger.warn)
        project = stage_project(ctx, self.projectDir)
        profiles = ctx.workdir / f".gitsync-dbt-profiles-{uuid.uuid4().hex[:8]}"
        spec = self.script_spec(ctx)
        spec.fail_fast = True  # each command must succeed; the dbt flag is --fail-fast (see legacy tasks)
        spec.python = True
        spec.commands = _with_log_format(self.dbt_commands(ctx), self.log_format())
        spec.stdout_hook = _json_log_line if self.log_format() == "JSON" else None
        spec.env.update(self._dbt_env(ctx, spec, project, profiles))
        _require_dbt(ctx, spec)
        self._load_manifest(ctx)
        try:
            outputs = execute(ctx, spec)
        except TaskFailed as exc:
            exc.outputs.update(self._results(ctx, project, {}))
            raise
        finally:
            shutil.rmtree(profiles, ignore_errors=True)
        outputs.update(self._results(ctx, project, outputs.get("outputFiles") or {}))
        self._store_manifest(ctx, project)
        return outputs

    def _dbt_env(self, ctx: RunContext, spec: ScriptSpec, project: Path, profiles: Path) -> dict[str, str]:
        def seen(path: Path) -> str:
            if spec.docker_image is None:
                return str(path)
            return str(CONTAINER_WORKDIR / PurePosixPath(path.relative_to(ctx.workdir).as_posix()))

        env = {"DBT_PROJECT_DIR": seen(project), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        if self.profiles:
            profiles.mkdir(parents=True)
            (profiles / "profiles.yml").write_text(self.profiles, encoding="utf-8")
            env["DBT_PROFILES_DIR"] = seen(profiles)
        elif (project / "profiles.yml").is_file():
            env["DBT_PROFILES_DIR"] = seen(project)
        return {**env, **{key: value for key, value in spec.env.items() if key == "DBT_SEND_ANONYMOUS_USAGE_STATS"}}

    def _results(self, ctx: RunContext, project: Path, files: dict[str, str]) -> dict[str, Any]:
        if not as_bool(self.parseRunResults, True):
            return {}
        return parse_run_results(ctx, project, files)

    def _load_manifest(self, ctx: RunContext) -> None:
        key = getattr(self, "loadManifest", None)
        if key is None:
            return
        value = ctx.kv.get(key.namespace or ctx.namespace, key.key)
        if value is MISSING:
            ctx.logger.warn(f"no manifest under key {key.key!r}: dbt runs without a previous state")
            return
        text = value if isinstance(value, str) else json.dumps(value)
        (ctx.workdir / "manifest.json").write_text(text, encoding="utf-8")

    def _store_manifest(self, ctx: RunContext, project: Path) -> None:
        key = getattr(self, "storeManifest", None)
        manifest = project / "target" / "manifest.json"
        if key is None:
            return
        if not manifest.is_file():
            ctx.warn("storeManifest: dbt wrote no target/manifest.json")
            return
        ctx.kv.set(key.namespace or ctx.namespace, key.key, json.loads(manifest.read_text(encoding="utf-8")))


NO_DBT = (
    "dbt is not installed where gitsync runs: no `dbt` command beside gitsync's Python ({where}) or on the PATH."
    " Install it into gitsync's environment"
    " with pip install 'gitsync[dbt]' (in a checkout: .venv/bin/pip install -e '.[dbt]'), or run the task in a"
    " container with the Docker task runner"
)


def _require_dbt(ctx: RunContext, spec: ScriptSpec) -> None:
    """A local run whose commands call `dbt` needs a dbt command on the PATH the script gets (gitsync's own
    environment first): say so once, as a permanent failure, rather than let each command fail with
    `dbt: not found`. The Docker runner brings its own dbt."""
    if spec.docker_image is not None:
        return
    if not any(command.split()[:1] == ["dbt"] for command in spec.commands):
        return
    beside = str(Path(spec.python_executable).parent)
    if shutil.which("dbt", path=os.pathsep.join([beside, ctx.env.get("PATH") or os.defpath])) is None:
        raise TaskFailed(NO_DBT.format(where=beside), permanent=True)


def _image_given(task: ScriptTask) -> bool:
    """The task names its image (containerImage, the Docker runner's image, the legacy docker.image)."""
    runner, docker = task.taskRunner, getattr(task, "docker", None)
    runner_image = runner.get("image") if isinstance(runner, dict) else getattr(runner, "image", None)
    return bool(task.containerImage or runner_image or getattr(docker, "image", None))


def resolve_project_dir(ctx: RunContext, project_dir: str | None) -> Path:
    """Absolute as is; relative: in the task's working directory, else in gitsync's working directory."""
    if not project_dir:
        return ctx.workdir
    path = Path(project_dir)
    candidates = [path] if path.is_absolute() else [ctx.workdir / path, Path.cwd() / path]
    for candidate in candidates:
        if (candidate / "dbt_project.yml").is_file():
            return candidate.resolve()
    tried = ", ".join(str(candidate) for candidate in candidates)
    raise TaskFailed(f"projectDir {project_dir!r}: no dbt_project.yml in {tried}")


def stage_project(ctx: RunContext, project_dir: str | None) -> Path:
    """The project folder to run in: inside the working directory, copied there when it is elsewhere."""
    source = resolve_project_dir(ctx, project_dir)
    workdir = ctx.workdir.resolve()
    if source == workdir or workdir in source.parents:
        return source
    target = workdir / source.name
    shutil.copytree(source, target, ignore=_SKIP_ON_COPY, dirs_exist_ok=True)
    return target


def _with_log_format(commands: list[str], log_format: str) -> list[str]:
    if log_format not in ("JSON", "TEXT"):
        return commands
    flag = f" --log-format {log_format.lower()}"
    return [
        command + flag
        if re.match(r"\s*(\S*/)?dbt\s+\w", command) and "--log-format" not in command and "--version" not in command
        else command
        for command in commands
    ]


def _json_log_line(line: str) -> tuple[str, str] | None:
    """A dbt JSON log line as (level, message); None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        info = json.loads(line).get("info") or {}
    except (ValueError, AttributeError):
        return None
    if not isinstance(info, dict) or "msg" not in info:
        return None
    return _LEVELS.get(str(info.get("level", "info")).lower(), "INFO"), _ANSI.sub("", str(info["msg"]))


def parse_run_results(ctx: RunContext, project: Path, files: dict[str, str]) -> dict[str, Any]:
    """Store run_results.json and manifest.json, log one line per node, return `runResults` and `outputFiles`."""
    target = project / "target"
    path = target / "run_results.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    results = [_result(item) for item in data.get("results") or []]
    for item in results:
        message = f" ({item['message']})" if item["message"] else ""
        ctx.logger.info(f"dbt {item['uniqueId']}: {item['status']} in {item['executionTime']:.2f} s{message}")
    stored = dict(files)
    for name in ("run_results.json", "manifest.json"):
        if (target / name).is_file():
            stored[name] = ctx.storage.put(target / name, name)
    summary = {
        "elapsedTime": data.get("elapsed_time"),
        "counts": dict(Counter(item["status"] for item in results)),
        "results": results,
    }
    return {"runResults": summary, "outputFiles": stored}


def _result(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "uniqueId": item.get("unique_id"),
        "status": str(item.get("status")),
        "executionTime": float(item.get("execution_time") or 0.0),
        "message": item.get("message"),
        "failures": item.get("failures"),
    }


class DbtCLI(_Dbt):
    """Run dbt commands (e.g. `dbt deps`, `dbt build`)."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.DbtCLI"

    commands: StrList
    """The dbt commands."""
    logFormat: Dyn[Literal["JSON", "TEXT", "DEFAULT"]] = "JSON"
    """Log format dbt is asked for."""
    storeManifest: ManifestKey | None = None
    """Store manifest.json in the KV store after the run."""
    loadManifest: ManifestKey | None = None
    """Load manifest.json from the KV store before the run (written to the working directory: `--state .`)."""
    engine: Dyn[Literal["CORE", "FUSION"]] = "CORE"
    """Which dbt the Docker runner's image holds when no image is given: CORE (dbt-core) or FUSION (dbt Fusion).
    The Process runner runs the dbt installed here, whatever it is."""

    def dbt_commands(self, ctx: RunContext) -> list[str]:
        return as_list(self.commands)

    def script_spec(self, ctx: RunContext) -> ScriptSpec:
        spec = super().script_spec(ctx)
        engine = str(self.engine or "CORE").strip().upper()
        if engine not in ("CORE", "FUSION"):
            raise TaskFailed(f"engine must be CORE or FUSION, got {self.engine!r}")
        if engine == "FUSION" and spec.docker_image == self.default_image and not _image_given(self):
            spec.docker_image = DBT_FUSION_IMAGE
        return spec

    def log_format(self) -> str:
        return str(self.logFormat or "JSON").upper()


class _DbtRun(_Dbt):
    thread: Dyn[int] | None = None
    """Number of threads."""
    fullRefresh: Dyn[bool] = False
    """Rebuild incremental models from scratch."""
    target: str | None = None
    """Profile target."""
    selector: str | None = None
    """Named selector."""
    select: StrList | None = None
    """Nodes to include."""
    exclude: StrList | None = None
    """Nodes to exclude."""

    def run_flags(self) -> list[str]:
        flags = []
        if self.thread:
            flags += ["--threads", str(self.thread)]
        if as_bool(self.fullRefresh):
            flags.append("--full-refresh")
        if self.target:
            flags += ["--target", self.target]
        if self.selector:
            flags += ["--selector", self.selector]
        for option, values in (("--select", self.select), ("--exclude", self.exclude)):
            if as_list(values):
                flags += [option, *as_list(values)]
        return flags


class Build(_DbtRun):
    """Deprecated (use DbtCLI): `dbt build`."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.Build"
    subcommand: ClassVar[str] = "build"


class Run(_DbtRun):
    """Deprecated (use DbtCLI): `dbt run`."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.Run"
    subcommand: ClassVar[str] = "run"


class Test(_DbtRun):
    """Deprecated (use DbtCLI): `dbt test`."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.Test"
    subcommand: ClassVar[str] = "test"
    __test__ = False  # not a pytest class


class Deps(_DbtRun):
    """Deprecated (use DbtCLI): `dbt deps` (with the run flags, as Kestra passes them)."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.Deps"
    subcommand: ClassVar[str] = "deps"


def _legacy_commands(task: _Dbt, ctx: RunContext) -> list[str]:
    """One dbt command from the legacy task's properties (`./bin/dbt`, their venv's dbt, means the installed one)."""
    dbt = task.dbtPath
    if dbt == "./bin/dbt" and not (ctx.workdir / "bin" / "dbt").exists():
        dbt = "dbt"
    words = [dbt]
    for flag, on in (
        ("--debug", task.debug),
        ("--fail-fast", task.failFast),
        ("--warn-error", task.warnError),
        ("--no-version-check", task.noVersionCheck),
    ):
        if as_bool(on):
            words.append(flag)
    words.append(task.subcommand)
    if isinstance(task, _DbtRun):
        words += task.run_flags()
    return [" ".join(shlex.quote(word) for word in words)]


for _legacy in (Build, Run, Test, Deps):
    _legacy.dbt_commands = _legacy_commands  # type: ignore[method-assign,assignment]
