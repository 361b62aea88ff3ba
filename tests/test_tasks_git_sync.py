"""Kestra's git sync/push tasks: gitsync does their work itself, so they validate with a warning that says what to do
instead, and a run does nothing but log the same (nothing is cloned, pushed or changed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from runtime import run_outputs
from shared import SHARED, require

GIT = "io.kestra.plugin.git."
CASES = [
    ("SyncFlows", "gitsync syncs flows from git itself", "point a source of gitsync.yaml"),
    ("Sync", "gitsync syncs flows and namespace files from git itself", "point a source of gitsync.yaml"),
    ("SyncNamespaceFiles", "gitsync reads namespace files from git itself", "commit the files there instead"),
    ("PushFlows", "gitsync's flows already live in git", "commit the flow files instead"),
    ("PushNamespaceFiles", "gitsync's namespace files already live in git", "commit the files instead"),
]


def flow(tmp_path: Path, name: str, url: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"""id: uses_{name.lower()}
namespace: company.team
tasks:
  - id: git
    type: {GIT}{name}
    url: {url}
    branch: main
    dryRun: false
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "after {{{{ outputs.git | length }}}}"
outputs:
  - id: after
    type: STRING
    value: "{{{{ outputs.after.value }}}}"
""",
        encoding="utf-8",
    )
    return path


def gitsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitsync", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(("name", "why", "instead"), CASES, ids=[c[0] for c in CASES])
def test_validate_warns_at_the_task_what_to_do_instead(tmp_path: Path, name: str, why: str, instead: str) -> None:
    path = flow(tmp_path, name, "https://github.com/acme/flows")
    done = gitsync("validate", path.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    warning = next(line for line in done.stdout.splitlines() if "tasks[0].url" in line)
    assert warning.startswith(f"{path.name}:6:5: warning: flow 'company.team.uses_{name.lower()}': tasks[0].url: ")
    assert why in warning and instead in warning and "running it does nothing" in warning


@pytest.mark.parametrize(("name", "why", "instead"), CASES, ids=[c[0] for c in CASES])
def test_a_run_does_nothing_and_logs_why(tmp_path: Path, name: str, why: str, instead: str) -> None:
    """The url points at a server that does not exist: a task that tried to reach it would fail."""
    path = flow(tmp_path, name, "https://127.0.0.1:1/acme/flows.git")
    done = gitsync("run", "--file", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{name} did nothing: {why}" in done.stdout
    assert run_outputs(done) == {"after": "after 0"}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [f"{name}.yaml", "gitsync.db"]


def test_the_corpus_bootstrap_flow_validates_with_one_warning_per_task() -> None:
    corpus = SHARED / "compat" / "kestra"
    path = require(corpus / "kestra-automation/ops__kestra-bootstrap.yml")
    done = gitsync("validate", str(path), cwd=corpus)
    assert done.returncode == 0, done.stdout + done.stderr
    warned = [line.split(": ")[3] for line in done.stdout.splitlines() if ".url: 'url' is accepted" in line]
    assert warned == ["tasks[0].url", "tasks[1].url", "tasks[2].url"]
