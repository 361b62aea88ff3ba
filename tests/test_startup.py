"""What a command imports before it works, and how the daemon says it is starting (issue 12: start-up, memory).

Each command runs as a real process (`python -m gitsync …`, listing `sys.modules` when it exits). No timing is
asserted: what is held is the set of modules, which start-up time and an idle daemon's memory follow;
`bench/bench_startup.py` prints the times and the RSS.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from daemon_harness import listing_modules, running_daemon
from gitservers import GitRepo
from test_cli_validate import VALID

from runner.registry import ENTRY_POINT_GROUP

HEAVY = (
    "starlette",
    "uvicorn",
    "httpx",
    "dulwich",
    "apscheduler",
    "watchfiles",
    "prometheus_client",
    "holidays",
    "regex",
    "duckdb",
    "sqlite_utils",
    "jinja2",
)
"""Libraries the daemon, the runner or one plugin needs, and neither `--help` nor `validate` does."""


def imported(tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -m gitsync ARGS` as a user would; the process and every module it had imported when it exited."""
    listing = tmp / "modules.json"
    done = subprocess.run([*listing_modules(listing), *args], capture_output=True, text=True, timeout=120)
    return done, set(json.loads(listing.read_text()))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def plugin_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "plugins" or m.startswith("plugins.")}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["validate", "--help"], ["daemon", "--help"]])
def test_help_imports_argparse_and_no_plugin_nor_library(args: list[str], tmp_path: Path) -> None:
    done, modules = imported(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: gitsync" in done.stdout or done.stdout.startswith("gitsync ")
    assert plugin_modules(modules) == set()
    assert heavy(modules) == []
    assert "pydantic" not in modules  # no model is needed to print the commands
    assert not {m for m in modules if m.startswith(("runner.flow", "runner.engine", "gitsync.daemon"))}


def test_validate_of_a_log_flow_imports_only_the_log_plugin(tmp_path: Path) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(VALID)
    done, modules = imported(tmp_path, "validate", str(path))
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "1 file(s): 1 valid, 0 invalid" in done.stdout
    assert plugin_modules(modules) == {"plugins", "plugins.core", "plugins.core.log"}
    assert heavy(modules) == []


def test_unknown_type_is_located_and_suggested_from_every_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(VALID.replace("core.log.Log", "core.log.Lgo"))
    done, _ = imported(tmp_path, "validate", str(path))
    assert done.returncode == 1
    assert (
        f"{path}:5:5: flow 'acme.demo.hello': tasks[0].type: unknown task type 'io.kestra.plugin.core.log.Lgo' "
        "(did you mean io.kestra.plugin.core.log.Log?)"
    ) in done.stdout


def test_a_legacy_type_name_still_resolves(tmp_path: Path) -> None:
    path = tmp_path / "legacy.yaml"
    path.write_text(VALID.replace("io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log"))
    done, _ = imported(tmp_path, "validate", str(path))
    assert done.returncode == 0, done.stdout
    assert "legacy type name 'io.kestra.core.tasks.log.Log' is replaced by io.kestra.plugin.core.log.Log" in done.stdout


def test_the_schema_lists_every_entry_point() -> None:
    done = subprocess.run([sys.executable, "-m", "gitsync", "schema"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    defs = json.loads(done.stdout)["$defs"]
    listed = {
        name
        for kind in ("Task", "Trigger", "Condition", "TaskRunner")
        for name in defs[kind]["properties"]["type"]["enum"]
    }
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert len(names) > 60 and names - listed == set()


def test_the_registry_lists_every_type_without_importing_a_plugin() -> None:
    code = (
        "import sys; from gitsync.compose import load_registry; names = load_registry().names(); "
        "print(len(names), sorted(m for m in sys.modules if m.split('.')[0] == 'plugins'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split(maxsplit=1) == [
        str(len({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})),
        "[]\n",
    ]


# -- the daemon says it is starting --------------------------------------------------------------------------------


def test_healthz_says_starting_while_the_first_sync_runs_then_running(tmp_path: Path) -> None:
    """A git:// remote that takes the connection and never answers holds the first sync; /healthz answers all the
    same: 200, phase starting, the source syncing. Once the remote goes away the sync fails: phase running, 503."""
    remote = socket.create_server(("127.0.0.1", 0))  # connections wait in its backlog, never accepted
    source = {"name": "slow", "repo": f"git://127.0.0.1:{remote.getsockname()[1]}/flows.git", "branch": "main"}
    try:
        with running_daemon(tmp_path / "daemon", [source]) as daemon:
            syncing = daemon.wait_for(
                lambda: (r := daemon.health()).json()["sources"]["slow"]["syncing"] and r, "the first sync to start"
            )
            report = syncing.json()
            assert syncing.status_code == 200
            assert report["status"] == "ok" and report["phase"] == "starting"
            assert report["sources"]["slow"]["outcome"] is None
            remote.close()  # the waiting connection is reset: the fetch fails
            failed = daemon.wait_for(lambda: (r := daemon.health()).json()["phase"] == "running" and r, "the sync")
            assert failed.status_code == 503
            assert failed.json()["sources"]["slow"] == {
                **failed.json()["sources"]["slow"],
                "syncing": False,
                "outcome": "failed",
                "degraded": True,
            }
    finally:
        remote.close()


# -- the daemon holds what it uses ---------------------------------------------------------------------------------

RENDERING = ("jinja2", "runner.expressions.renderer", "runner.expressions.functions")
"""What renders `{{ }}`: Jinja's sandbox, the expression filters and functions."""

RENDERED_FLOW = """\
id: hello
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "hello from {{ flow.id }}"
"""


IDLE_UNUSED = (*RENDERING, "regex", "prometheus_client", "sqlite_utils", "pygments", "markupsafe")
"""What an idle daemon does not use: what renders, the regex library expressions' regular expressions run on,
a metrics library (`/metrics` is written by gitsync.http.metrics), sqlite-utils (the store's migrations and
queries are SQL; `Store.rows_where` makes its view of the connection when first used), and what the web UI
renders its pages with (Jinja2, MarkupSafe) and highlights a flow's source with (Pygments): its first page does."""


def unused_when_idle(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in IDLE_UNUSED or m in IDLE_UNUSED)


def test_the_idle_daemon_imports_what_renders_expressions_only_when_a_flow_runs(tmp_path: Path) -> None:
    """A daemon that synced a flow and serves HTTP has not imported Jinja, the expression functions, regex, a
    metrics library nor sqlite-utils (an idle daemon holds less memory); the first execution imports what renders,
    and its expression is rendered."""
    repo = GitRepo(tmp_path / "work")
    repo.commit({"flows/hello.yaml": RENDERED_FLOW})
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    env = {"GITSYNC_API_TOKEN": "token-for-startup-tests"}
    idle, ran = tmp_path / "idle.json", tmp_path / "ran.json"
    with running_daemon(tmp_path / "daemon", [source], env=env, modules_to=idle) as daemon:
        daemon.wait_for(lambda: daemon.health().json()["phase"] == "running", "the first sync")
        assert daemon.query("SELECT uid FROM flows") == [{"uid": "acme.demo.hello"}]  # read from outside
    assert unused_when_idle(set(json.loads(idle.read_text()))) == []

    with running_daemon(tmp_path / "daemon", [source], env=env, modules_to=ran) as daemon:
        auth = {"Authorization": "Bearer token-for-startup-tests"}
        started = daemon.post("/api/v1/executions/acme.demo/hello", json={}, headers=auth)
        assert started.status_code == 201, started.text
        execution = f"/api/v1/executions/{started.json()['id']}"
        daemon.wait_for(lambda: daemon.api(execution)["state"] == "SUCCESS", "the execution to succeed")
        logs = daemon.query("SELECT message FROM logs WHERE execution_id = ?", (started.json()["id"],))
        assert "hello from hello" in [row["message"] for row in logs]
    assert set(json.loads(ran.read_text())) >= set(RENDERING)
