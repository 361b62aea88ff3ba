"""The CI files a user copies, run as their CI would run them: the README's GitHub workflow with the Action
(`action.yml`), `examples/ci/gitlab-ci.yml` and `examples/ci/forgejo.yml`.

No CI runs here, so a small runner does what each one does with the file: the steps' shell scripts run in bash
with the variables the CI sets (tests/test_review.py's `ci_environment`, without the token the workflow must pass
itself), `${{ … }}` expressions filled from what the CI would know (any other expression fails the test), and the
checkout made with the git CLI as the CI's checkout makes it. What only the CI's own actions do (set up Python, check
out) is stood in for: the runner's Python is the test's. gitsync is installed for real, from a copy of this
checkout, where the user's file names its repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostserver import host_server
from test_review import INVALID, MARKER, REPOSITORY, TOKEN, Served, ci_environment, flow, serving

ROOT = Path(__file__).resolve().parent.parent
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    "test-artifacts",
    ".gitsync",
    "*.db",
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as repository:
        yield repository


@pytest.fixture(scope="module")
def gitsync_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as the CI downloads it (the Action's folder, or what `pip install` is pointed at)."""
    target = tmp_path_factory.mktemp("gitsync-release") / "gitsync"
    shutil.copytree(ROOT, target, ignore=NOT_SOURCE)
    return target


def fill(text: str, known: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        assert match.group(1) in known, f"the file uses ${{{{ {match.group(1)} }}}}, which no test runner fills"
        return known[match.group(1)]

    return EXPRESSION.sub(value, text)


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A step's script as the runners run it (GitHub's `shell: bash` is `bash --noprofile --norc -eo pipefail`)."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def runner_environment(env: dict[str, str], tmp: Path, token_variable: str) -> dict[str, str]:
    """The job's variables, without the token (the CI file must hand it over), the test's Python first on PATH."""
    job = {k: v for k, v in env.items() if k != token_variable}
    job["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    (tmp / "runner-temp").mkdir(exist_ok=True)
    job["RUNNER_TEMP"] = job["TMPDIR"] = str(tmp / "runner-temp")
    return job


def readme_workflow() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "uses: acme/gitsync@" in b]
    return yaml.safe_load(textwrap.dedent(block))


def events(workflow: dict[str, Any]) -> Any:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def test_the_readme_workflow_and_the_action_post_the_review(
    served: Served,
    gitsync_copy: Path,
    tmp_path: Path,
) -> None:
    workflow = readme_workflow()
    assert events(workflow) == "pull_request"
    assert workflow["permissions"] == {"contents": "read", "statuses": "write", "pull-requests": "write"}
    [job] = workflow["jobs"].values()
    checkout_step, gitsync_step = job["steps"]
    assert checkout_step == {"uses": "actions/checkout@v4"}
    assert gitsync_step["uses"].startswith("acme/gitsync@")  # this repository, at a tag: its action.yml

    head = served.push_pr("github", 3, {"flows/broken.yaml": INVALID, "flows/new.yaml": flow("new")})
    checkout = served.clone("checkout", "--depth", "1")  # actions/checkout's default depth
    action = yaml.safe_load((gitsync_copy / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    with host_server("github", REPOSITORY, TOKEN) as host:
        env = runner_environment(
            ci_environment("github", host, served, checkout, 3, head, served.base), tmp_path, "GITHUB_TOKEN"
        )
        inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
        inputs.update({k: str(v) for k, v in gitsync_step.get("with", {}).items()})
        assert set(inputs) == set(action["inputs"]), "the workflow gives an input the Action does not have"
        known = {"github.token": TOKEN, **{f"inputs.{k}": fill(v, {"github.token": TOKEN}) for k, v in inputs.items()}}
        results = []
        for step in action["runs"]["steps"]:
            if "uses" in step:
                assert step["uses"].startswith("actions/setup-python@"), step  # the runner's Python stands in
                assert fill(step["with"]["python-version"], known) == "3.12"
                continue
            assert step["shell"] == "bash"
            step_env = {
                **env,
                "GITHUB_ACTION_PATH": str(gitsync_copy),
                **{k: fill(str(v), known) for k, v in step.get("env", {}).items()},
            }
            done = bash(fill(step["run"], known), checkout, step_env)
            results.append(done)
            if done.returncode:
                break
        review = results[-1]
        assert len(results) == 2 and results[0].returncode == 0, results[0].stderr
        assert review.returncode == 1, review.stdout + review.stderr  # the head is invalid: the job fails
        assert "::error file=flows/broken.yaml,line=6,col=5," in review.stdout
        assert [(s["sha"], s["context"], s["state"]) for s in host.statuses] == [(head, "gitsync/plan", "failure")]
        [comment] = host.comments.values()
        assert comment["body"].startswith(MARKER) and "❌ head is invalid" in comment["body"]
        assert host.violations == []


def test_the_gitlab_template_posts_the_review_and_writes_the_code_quality_report(
    served: Served,
    gitsync_copy: Path,
    tmp_path: Path,
) -> None:
    [job] = yaml.safe_load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text(encoding="utf-8")).values()
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    head = served.push_pr("gitlab", 4, {"flows/broken.yaml": INVALID})
    checkout = served.clone("checkout", "--depth", "20")  # GitLab's default GIT_DEPTH is a few dozen commits
    with host_server("gitlab", REPOSITORY, TOKEN) as host:
        env = runner_environment(
            ci_environment("gitlab", host, served, checkout, 4, head, served.base), tmp_path, "GITLAB_TOKEN"
        )
        env["GITLAB_TOKEN"] = TOKEN  # the masked CI/CD variable the template asks for
        variables = {**job["variables"], "GITSYNC_INSTALL": str(gitsync_copy)}  # where the user gets gitsync
        done = bash("\n".join(job["script"]), checkout, {**env, **variables})
        assert done.returncode == 1, done.stdout + done.stderr
        report = checkout / job["artifacts"]["reports"]["codequality"]
        assert job["artifacts"]["when"] == "always"  # uploaded though the job fails
        issues = json.loads(report.read_text(encoding="utf-8"))
        assert [(i["location"]["path"], i["location"]["lines"]["begin"]) for i in issues] == [
            ("flows/broken.yaml", 6),
            ("flows/broken.yaml", 8),
        ]
        assert [(s["sha"], s["context"], s["state"]) for s in host.statuses] == [(head, "gitsync/plan", "failed")]
        [comment] = host.comments.values()
        assert comment["pr"] == 4 and comment["body"].startswith(MARKER)
        assert host.violations == []


def test_the_forgejo_workflow_posts_the_review_without_a_checkout(
    served: Served,
    gitsync_copy: Path,
    tmp_path: Path,
) -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "forgejo.yml").read_text(encoding="utf-8"))
    assert events(workflow) == "pull_request"
    [job] = workflow["jobs"].values()
    head = served.push_pr("gitea", 5, {"flows/new.yaml": flow("new")})
    workspace = tmp_path / "workspace"  # the job's container starts with an empty workspace
    workspace.mkdir()
    with host_server("gitea", REPOSITORY, TOKEN) as gitea:
        env = runner_environment(
            ci_environment("gitea", gitea, served, workspace, 5, head, served.base), tmp_path, "GITHUB_TOKEN"
        )
        env.update({**workflow["env"], "GITSYNC_INSTALL": str(gitsync_copy)})
        known = {"secrets.GITHUB_TOKEN": TOKEN}
        for step in job["steps"]:
            assert "uses" not in step, "the container has no node for JavaScript actions"
            step_env = {**env, **{k: fill(str(v), known) for k, v in step.get("env", {}).items()}}
            done = bash(fill(step["run"], known), workspace, step_env)
            assert done.returncode == 0, done.stdout + done.stderr
        assert "there is no clone here (. is not a git repository): fetched main and refs/pull/5/head" in done.stderr
        assert "+ flow acme.new (flows/new.yaml)" in done.stdout
        assert [(s["sha"], s["context"], s["state"]) for s in gitea.statuses] == [(head, "gitsync/plan", "success")]
        [comment] = gitea.comments.values()
        assert comment["body"].startswith(MARKER) and "`acme.new`" in comment["body"]
        assert gitea.violations == []


def test_each_ci_file_names_the_same_gitsync_to_install() -> None:
    """The README, the Action's users and both templates point at one place and version to get gitsync from."""
    gitlab = yaml.safe_load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text(encoding="utf-8"))
    forgejo = yaml.safe_load((ROOT / "examples" / "ci" / "forgejo.yml").read_text(encoding="utf-8"))
    [job] = gitlab.values()
    action_ref = next(
        s["uses"] for s in next(iter(readme_workflow()["jobs"].values()))["steps"] if "gitsync" in s["uses"]
    )
    owner_repo, _, version = action_ref.partition("@")
    expected = f"gitsync @ git+https://github.com/{owner_repo}@{version}"
    assert job["variables"]["GITSYNC_INSTALL"] == expected
    assert forgejo["env"]["GITSYNC_INSTALL"] == expected
