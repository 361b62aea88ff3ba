"""Issue 9, class 3: a task process gets a clean environment, never the service's own credentials.

Attacked through `gitsync run` and `gitsync daemon` (real subprocesses): the service's environment holds the API
token, a host token, SECRET_* values and other variables; a shell task prints `env`. The task sees PATH, HOME,
the locale, its own `env`, and what `tasks.env_allow` (here `GITSYNC_TASKS_ENV_ALLOW`) names; `{{ envs.x }}`
still reads the ENV_* variables for expressions.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from daemon_harness import running_daemon
from gitservers import GitRepo
from runtime import Runtime

from gitsync.config import load_settings
from gitsync.executions.manager import task_environment

API_TOKEN = "api-token-never-in-a-task"
HOST_TOKEN_ENV, HOST_TOKEN = "GITSYNC_TEST_HOST_TOKEN", "host-token-never-in-a-task"
SECRET_VALUE = "secret-value-never-in-a-task"
SERVICE_ENV = {
    "GITSYNC_API_TOKEN": API_TOKEN,
    HOST_TOKEN_ENV: HOST_TOKEN,
    "SECRET_DEPLOY_KEY": base64.b64encode(SECRET_VALUE.encode()).decode(),
    "UNRELATED_SERVICE_VAR": "unrelated-value",
    "ENV_GREETING": "hello-from-envs",
    "MY_ALLOWED": "allowed-value",
    "TEAM_REGION": "eu-west-1",
    "GITSYNC_TASKS_ENV_ALLOW": "MY_ALLOWED, TEAM_*",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
}

FLOW = """
    id: printenv
    namespace: acme
    tasks:
      - id: dump
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        env:
          FLOW_VAR: flow-value
          GREETING: "{{ envs.greeting }}"
        commands:
          - env | sort | sed 's/^/ENV-LINE /'
"""


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "SECRET_"))}
    return {**env, **SERVICE_ENV, **(extra or {})}


def task_vars(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        _, found, rest = line.partition("ENV-LINE ")
        if found:
            name, _, value = rest.partition("=")
            out[name.strip()] = value
    return out


def assert_clean(seen: dict[str, str]) -> None:
    assert seen.get("FLOW_VAR") == "flow-value"  # the task's own env
    assert seen.get("GREETING") == "hello-from-envs"  # envs.x still works in expressions
    assert seen.get("MY_ALLOWED") == "allowed-value" and seen.get("TEAM_REGION") == "eu-west-1"  # allow-list
    assert "PATH" in seen and seen.get("LANG") == "C.UTF-8" and seen.get("TZ") == "UTC"
    for name in ("GITSYNC_API_TOKEN", HOST_TOKEN_ENV, "SECRET_DEPLOY_KEY", "UNRELATED_SERVICE_VAR", "ENV_GREETING"):
        assert name not in seen, f"{name} reached the task"
    assert not [name for name in seen if name.startswith(("SECRET_", "GITSYNC_"))]
    text = "\n".join(f"{k}={v}" for k, v in seen.items())
    for value in (API_TOKEN, HOST_TOKEN, SECRET_VALUE, SERVICE_ENV["SECRET_DEPLOY_KEY"]):
        assert value not in text


def test_gitsync_run_gives_tasks_a_clean_environment(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    runtime.deploy({"printenv.yaml": FLOW})
    runtime.close()
    state = ["--db", str(tmp_path / "state.db"), "--data-dir", str(tmp_path / "data")]
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "run", "acme.printenv", *state],
        capture_output=True,
        text=True,
        timeout=120,
        env=service_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert_clean(task_vars(done.stdout))


def test_daemon_gives_tasks_a_clean_environment(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/printenv.yaml": textwrap.dedent(FLOW)})
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    source["token_env"] = HOST_TOKEN_ENV
    with running_daemon(tmp_path / "daemon", [source], env=service_env()) as daemon:
        daemon.wait_for(lambda: "acme.printenv" in daemon.flow_uids(), "the flow is applied")
        answer = daemon.post(
            "/api/v1/executions/acme/printenv", json={}, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert answer.status_code == 201, answer.text

        def done() -> bool:
            rows = daemon.query("SELECT state FROM executions")
            return bool(rows) and rows[0]["state"] in ("SUCCESS", "FAILED")

        daemon.wait_for(done, "the execution ends", 90)
        assert daemon.query("SELECT state FROM executions")[0]["state"] == "SUCCESS"
        logs = "\n".join(row["message"] for row in daemon.query("SELECT message FROM logs ORDER BY id"))
    assert_clean(task_vars(logs))


def test_the_allow_list_setting_and_its_override(tmp_path: Path) -> None:
    config = tmp_path / "gitsync.yaml"
    config.write_text("tasks:\n  env_allow: [ONE, PRE_*]\n", encoding="utf-8")
    assert load_settings(str(config), environ={}).tasks.env_allow == ["ONE", "PRE_*"]
    overridden = load_settings(str(config), environ={"GITSYNC_TASKS_ENV_ALLOW": "TWO,OTHER_*"})
    assert overridden.tasks.env_allow == ["TWO", "OTHER_*"]
    environ = {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "ONE": "1", "PRE_X": "x", "GITSYNC_API_TOKEN": "t"}
    assert task_environment(environ, ["ONE", "PRE_*"]) == {k: v for k, v in environ.items() if k != "GITSYNC_API_TOKEN"}
    from gitsync.errors import ConfigError

    with pytest.raises(ConfigError, match="env_allow"):
        load_settings(None, {"tasks.env_allow": ["BAD NAME"]}, environ={})


def test_gitsync_own_virtual_environment_never_reaches_a_task() -> None:
    """gitsync's venv (its bin folder, VIRTUAL_ENV, PYTHONPATH, PYTHONHOME) is not the task's: a `pip install` in a
    task must not change the service. Not even the allow-list brings them back."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("gitsync runs outside a virtual environment here")
    own_bin = str(Path(sys.prefix) / "bin")
    environ = {
        "PATH": f"{own_bin}:/usr/local/bin:{own_bin}/:/usr/bin",
        "VIRTUAL_ENV": sys.prefix,
        "PYTHONPATH": "/opt/service/lib",
        "PYTHONHOME": sys.prefix,
        "HOME": "/h",
    }
    clean = task_environment(environ, ["VIRTUAL_ENV", "PYTHON*"])
    assert clean == {"PATH": "/usr/local/bin:/usr/bin", "HOME": "/h"}
