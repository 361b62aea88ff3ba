"""dbt tasks: `DbtCLI` (any dbt commands) and the older single-command `Build`, `Run`, `Test`, `Deps`."""

from __future__ import annotations

from typing import ClassVar, Literal

from plugins.scripts.common import LOCAL_PROCESS, ScriptTask
from plugins.scripts.docker import LegacyDockerOptions
from plugins.values import Options, StrList
from runner.types import Dyn


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
    parseRunResults: Dyn[bool] = True
    """Parse run_results.json and manifest.json into outputs and metrics."""
    dockerOptions: LegacyDockerOptions | None = None
    """Deprecated name of `docker`."""


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
    """Load manifest.json from the KV store before the run (state:modified)."""


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


class Build(_DbtRun):
    """Deprecated (use DbtCLI): `dbt build`."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.Build"


class Run(_DbtRun):
    """Deprecated (use DbtCLI): `dbt run`."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.Run"


class Test(_DbtRun):
    """Deprecated (use DbtCLI): `dbt test`."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.Test"
    __test__ = False  # not a pytest class


class Deps(_Dbt):
    """Deprecated (use DbtCLI): `dbt deps`."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cli.Deps"
