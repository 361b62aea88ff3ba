"""The `gitsync-validate` pre-commit hook, run by pre-commit itself on a real repository of flows.

pre-commit builds the hook's environment from this checkout (a virtualenv, `pip install` of gitsync from the
local path; its dependencies come from PyPI or pip's cache) into a PRE_COMMIT_HOME under the test's tmp_path, so
nothing is left in the user's cache. `try-repo` runs the hook as the working tree has it; the README's
`.pre-commit-config.yaml` lines are tried as a user would, with `pre-commit install` and `git commit`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gitservers import GIT_ENV, GitRepo, git

ROOT = Path(__file__).resolve().parent.parent

BAD = """\
id: broken
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Lgo
    message: hi
"""
GOOD = BAD.replace("Lgo", "Log")

pytestmark = pytest.mark.skipif(
    not (ROOT / ".git").exists(), reason="pre-commit installs the hook from a git repository: this checkout is none"
)


def pre_commit(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def readme_config() -> str:
    """The README's `.pre-commit-config.yaml` lines (the yaml block naming the hook)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "id: gitsync-validate" in b]
    return block


def test_try_repo_fails_a_staged_bad_flow_with_its_file_and_line(tmp_path: Path) -> None:
    flows = GitRepo(tmp_path / "flows-repo")
    flows.commit({"flows/hello.yaml": GOOD.replace("broken", "hello")}, "first")
    (flows.path / "flows" / "broken.yaml").write_text(BAD, encoding="utf-8")
    git("add", "-A", cwd=flows.path)

    done = pre_commit(flows.path, tmp_path / "home", "try-repo", str(ROOT), "gitsync-validate", "--all-files")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "gitsync validate" in out and "Failed" in out
    assert "flows/broken.yaml:5:5: flow 'acme.demo.broken': tasks[0].type: unknown task type" in out
    assert "2 file(s): 1 valid, 1 invalid" in out


def test_the_readme_config_stops_a_commit_of_a_bad_flow_and_lets_the_fix_through(tmp_path: Path) -> None:
    config = yaml.safe_load(readme_config())
    [hook] = config["repos"][0]["hooks"]
    assert hook["id"] == "gitsync-validate"
    config["repos"][0]["repo"] = str(ROOT)  # where the README says "where you get gitsync from"
    config["repos"][0]["rev"] = git("rev-parse", "HEAD", cwd=ROOT)
    flows = GitRepo(tmp_path / "flows-repo")
    flows.commit({".pre-commit-config.yaml": yaml.safe_dump(config), "README.md": "flows\n"}, "first")
    home = tmp_path / "home"
    installed = pre_commit(flows.path, home, "install")
    assert installed.returncode == 0, installed.stderr

    first = flows.head()
    (flows.path / "flows").mkdir()
    (flows.path / "flows" / "broken.yaml").write_text(BAD, encoding="utf-8")
    (flows.path / "notes.yaml").write_text("outside: the folder\n", encoding="utf-8")  # outside `files:`
    git("add", "-A", cwd=flows.path)
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    commit = subprocess.run(
        ["git", "commit", "-m", "a bad flow"],
        cwd=flows.path,
        env={**env, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = commit.stdout + commit.stderr
    assert commit.returncode != 0, out
    assert "flows/broken.yaml:5:5: flow 'acme.demo.broken': tasks[0].type: unknown task type" in out
    assert "notes.yaml" not in out
    assert flows.head() == first  # nothing was committed

    (flows.path / "flows" / "broken.yaml").write_text(GOOD, encoding="utf-8")
    git("add", "-A", cwd=flows.path)
    commit = subprocess.run(
        ["git", "commit", "-m", "fixed"],
        cwd=flows.path,
        env={**env, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert commit.returncode == 0, commit.stdout + commit.stderr
    assert "gitsync validate" in commit.stderr and "Passed" in commit.stderr
    assert flows.head() != first
