"""The bundled examples as a new user meets them: after the README's first command, without internet and without
the optional extras.

README command 1 installs gitsync without extras (`pip install -e .`: no dbt) and starts
`gitsync daemon --repo . --path examples/flows --namespace-prefix acme` in the checkout; the user then runs each
example with `gitsync run NS.ID` from the same folder (the state is its gitsync.db). Here the examples are committed
to a repository in a temporary folder (the checkout), a Python without console scripts stands for the install
without extras (`runtime.python_without_extras`), PATH holds only the system's folders, no SECRET_* variable is set,
and no example is given an input: what runs without a network must not need one.

Every example ends SUCCESS, or it needs something such a machine lacks: then its description says what, the README
says how to get it, and the run fails at once (one attempt, not one per retry) with a message that names it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from daemon_harness import Daemon, start_cli_daemon
from gitservers import GitRepo
from runtime import python_without_extras

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
README = (ROOT / "README.md").read_text(encoding="utf-8")
SYSTEM_PATH = "/usr/bin:/bin"
SHARED_PATHS = {"/tmp/gitsync-analytics.duckdb": "analytics.duckdb", "/tmp/gitsync-shop.duckdb": "shop.duckdb"}
"""Fixed DuckDB paths of two examples -> files of the test's folder (concurrent runs must not share one)."""


def _flow_files() -> dict[str, dict]:  # type: ignore[type-arg]
    """uid -> the parsed flow document, for every bundled example."""
    flows = {}
    for path in sorted((EXAMPLES / "flows").rglob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        flows[f"{document['namespace']}.{document['id']}"] = document
    return flows


FLOWS = _flow_files()


@dataclass(frozen=True)
class Need:
    """What an example needs that README command 1 does not give, and where the user reads about it."""

    error: str
    """What its failed run says."""
    description: str
    """What its description says."""
    readme: str
    """How the README says to get it."""


NEEDS = {
    "acme.analytics.dbt_daily": Need(
        error="dbt is not installed where gitsync runs",
        description="pip install 'gitsync[dbt]'",
        readme="pip install -q -e '.[dbt]'",
    ),
}
SECRETS = {"acme.ops.deploy_hook": "SECRET_DEPLOY_HOOK_KEY", "acme.ops.cleanup_with_errors": "SECRET_SLACK_WEBHOOK"}
"""Examples that run by hand without a secret, and need one for the rest of what they show (a Webhook key, the
Slack alert of a failure): their description names the variable and the README says how to set it."""


@dataclass
class Checkout:
    path: Path
    python: Path
    env: dict[str, str]
    daemon: Daemon

    def gitsync(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command in another terminal of the same folder, as the README shows them (no state flags)."""
        return subprocess.run(
            [str(self.python), "-m", "gitsync", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checkout]:
    tmp = tmp_path_factory.mktemp("new_user")
    repo = GitRepo(tmp / "checkout")
    files: dict[str, str | None] = {}
    for path in sorted(p for p in EXAMPLES.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        for shared, name in SHARED_PATHS.items():
            text = text.replace(shared, str(tmp / name))
        files[f"examples/{path.relative_to(EXAMPLES).as_posix()}"] = text
    repo.commit(files)
    (tmp / "TMPDIR").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "SECRET_"))}
    env.update(PATH=SYSTEM_PATH, TMPDIR=str(tmp / "TMPDIR"), PYTHONUNBUFFERED="1")
    assert shutil.which("dbt", path=SYSTEM_PATH) is None, "this machine has dbt in its system folders"
    python = python_without_extras(tmp)
    daemon = start_cli_daemon(
        repo.path,
        ["--repo", ".", "--path", "examples/flows", "--namespace-prefix", "acme"],
        env=env,
        python=python,
    )
    try:
        daemon.wait_for(lambda: daemon.flow_uids() == set(FLOWS), "every example to be applied")
        yield Checkout(repo.path, python, env, daemon)
    finally:
        daemon.stop()


def test_readme_command_one_applies_every_example_and_is_healthy(checkout: Checkout) -> None:
    assert checkout.daemon.flow_uids() == set(FLOWS)
    assert checkout.daemon.health().status_code == 200
    listed = checkout.gitsync("flows", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {row["uid"] for row in json.loads(listed.stdout)} == set(FLOWS)


@pytest.mark.parametrize("uid", sorted(FLOWS))
def test_every_example_succeeds_offline_or_fails_at_once_naming_what_it_needs(checkout: Checkout, uid: str) -> None:
    done = checkout.gitsync("run", uid)
    lines = done.stdout.strip().splitlines() or [""]
    first = lines[0]
    last = next((line for line in reversed(lines) if re.match(r"[A-Z]+(:|$)", line)), "")  # how it ended
    assert first.startswith("execution ") and first.endswith(f" of {uid}"), done.stdout + done.stderr
    execution_id = first.split()[1]
    listed = checkout.gitsync("executions", "--flow", uid, "--format", "json")
    (execution,) = [e for e in json.loads(listed.stdout) if e["id"] == execution_id]
    need = NEEDS.get(uid)
    if need is None:
        assert (done.returncode, last, execution["state"]) == (0, "SUCCESS", "SUCCESS"), done.stdout + done.stderr
        return
    assert done.returncode == 1, done.stdout + done.stderr
    assert last.startswith("FAILED: ") and need.error in last, done.stdout
    assert need.description in last, "the failure says how to get what it needs"
    assert done.stdout.count(need.error) == 2, "said once as it happens and once at the end:\n" + done.stdout
    assert [(run["attempt"], run["state"]) for run in execution["task_runs"]] == [(1, "FAILED")]
    assert need.description in FLOWS[uid]["description"]
    assert need.readme in README


@pytest.mark.parametrize(("uid", "secret"), sorted(SECRETS.items()))
def test_an_example_that_needs_a_secret_names_it_and_the_readme_says_how_to_set_it(uid: str, secret: str) -> None:
    assert secret in FLOWS[uid]["description"]
    assert f"{secret}=$(printf %s " in README, "the README shows how to set it (base64, like Kestra's)"


def test_a_webhook_whose_key_secret_is_not_set_answers_403_and_says_which_variable_to_set(
    checkout: Checkout,
) -> None:
    daemon = checkout.daemon
    response = daemon.post("/api/v1/executions/webhook/acme.ops/deploy_hook/some-key", json={"service": "api"})
    assert response.status_code == 403
    assert "set environment variable SECRET_DEPLOY_HOOK_KEY" in response.json()["detail"]
    said = daemon.wait_for(
        lambda: [line for line in daemon.log_tail(400).splitlines() if "acme.ops.deploy_hook" in line],
        "the daemon to say why no request can start the flow",
    )
    assert any("SECRET_DEPLOY_HOOK_KEY" in line for line in said), said
    assert "Traceback" not in daemon.log_tail(400)
