"""Issue 9, class 8: robustness.

1. A file name that is not UTF-8, or a tree made malformed by a NUL inside a name, makes an invalid sync that
   names the path (escaped), through `gitsync sync` and the daemon; a fixed commit then applies.
2. A source given without a name is named from its URL's path or host, never its credentials or query.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_harness import query_db, running_daemon
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo
from gitservers import git

from gitsync.config import source_name_from_repo

FLOW = b"id: %s\nnamespace: acme\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def commit_tree(repo_path: Path, files: dict[bytes, bytes], message: bytes = b"change") -> str:
    """Commit `flows/<name>` -> content on main with dulwich, which writes any entry name a tree can hold."""
    if not repo_path.exists():
        git("init", "-q", "-b", "main", str(repo_path))
    repo = Repo(str(repo_path))
    folder = Tree()
    for name, content in files.items():
        blob = Blob.from_string(content)
        repo.object_store.add_object(blob)
        folder.add(name, 0o100644, blob.id)
    root = Tree()
    root.add(b"flows", 0o040000, folder.id)
    commit = Commit()
    commit.tree = root.id
    commit.author = commit.committer = b"Test <test@example.com>"
    commit.commit_time = commit.author_time = int(time.time())
    commit.commit_timezone = commit.author_timezone = 0
    commit.message = message
    with contextlib.suppress(KeyError):
        commit.parents = [repo.refs[b"refs/heads/main"]]
    for obj in (folder, root, commit):
        repo.object_store.add_object(obj)
    repo.refs[b"refs/heads/main"] = commit.id
    return commit.id.decode()


BAD_NAMES = [
    pytest.param(b"bad\xff.yaml", "flows/bad\\xff.yaml", "not valid UTF-8", id="not-utf8"),
    pytest.param(b"nul\x00x.yaml", "flows/nul\\x00x.yaml", "NUL byte", id="nul"),
]


def sync_cli(tmp_path: Path, repo: Path) -> subprocess.CompletedProcess[str]:
    state = ["--db", str(tmp_path / "state.db"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [sys.executable, "-m", "gitsync", "sync", "--repo", str(repo), "--branch", "main", "--path", "flows", *state],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("name", "shown", "reason"), BAD_NAMES)
def test_a_bad_file_name_is_an_invalid_sync_naming_it(tmp_path: Path, name: bytes, shown: str, reason: str) -> None:
    repo = tmp_path / "repo"
    commit_tree(repo, {b"ok.yaml": FLOW % b"ok", name: FLOW % b"bad"})
    done = sync_cli(tmp_path, repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stdout + done.stderr
    assert shown in done.stdout and reason in done.stdout
    (row,) = query_db(tmp_path / "state.db", "SELECT outcome, summary, errors FROM syncs")
    assert row["outcome"] == "invalid" and shown in row["summary"]
    assert shown in json.loads(row["errors"])[0]["message"]
    assert query_db(tmp_path / "state.db", "SELECT uid FROM flows") == []
    fixed = commit_tree(repo, {b"ok.yaml": FLOW % b"ok"}, b"rename")
    done = sync_cli(tmp_path, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["uid"] for r in query_db(tmp_path / "state.db", "SELECT uid FROM flows")] == ["acme.ok"]
    applied = query_db(tmp_path / "state.db", "SELECT commit_sha FROM syncs WHERE outcome = 'applied'")
    assert [r["commit_sha"] for r in applied] == [fixed]


@pytest.mark.parametrize(("name", "shown", "reason"), BAD_NAMES)
def test_the_daemon_records_a_bad_file_name_as_an_invalid_sync(
    tmp_path: Path, name: bytes, shown: str, reason: str
) -> None:
    repo = tmp_path / "repo"
    commit_tree(repo, {b"ok.yaml": FLOW % b"ok", name: FLOW % b"bad"})
    source = {"name": "main", "repo": str(repo), "branch": "main", "path": "flows", "poll": "1h"}
    with running_daemon(tmp_path / "daemon", [source]) as daemon:
        rows = daemon.wait_for(lambda: daemon.query("SELECT outcome, summary FROM syncs"), "the first sync")
        assert rows[0]["outcome"] == "invalid", rows
        assert shown in rows[0]["summary"] and reason in rows[0]["summary"]
        assert daemon.health().status_code in (200, 503)
        assert "internal error" not in daemon.log_tail(200)


# --- 8.2: a source's default name --------------------------------------------------------------------------

SECRET = "tok3n-SECRET"


@pytest.mark.parametrize(
    ("repo", "name"),
    [
        (f"https://github.com/acme/flows.git?token={SECRET}", "flows"),
        (f"https://x-access-token:{SECRET}@github.com/acme/flows", "flows"),
        (f"https://oauth2:{SECRET}@gitlab.example.com", "gitlab.example.com"),
        (f"https://{SECRET}@gitlab.example.com/?private_token={SECRET}", "gitlab.example.com"),
        (f"http://h.example/a/b?x={SECRET}#{SECRET}", "b"),
        ("git@github.com:acme/flows.git", "flows"),
        ("ssh://git@host:2222/a/b.git", "b"),
        ("/srv/git/flows/", "flows"),
        ("file:///srv/repo.git", "repo"),
    ],
)
def test_a_default_source_name_holds_no_credential(repo: str, name: str) -> None:
    assert source_name_from_repo(repo) == name


def test_gitsync_sync_without_name_never_shows_the_token(tmp_path: Path) -> None:
    repo = tmp_path / "flows"
    commit_tree(repo, {b"ok.yaml": FLOW % b"ok"})
    state = ["--db", str(tmp_path / "state.db"), "--data-dir", str(tmp_path / "data")]
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "sync", "--repo", f"file://{repo}?token={SECRET}", "--path", "flows", *state],
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = {r["source"] for r in query_db(tmp_path / "state.db", "SELECT source FROM syncs")}
    assert names == {"flows"}, done.stdout + done.stderr
    assert SECRET not in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "gitsync", "flows", *state], capture_output=True, text=True, timeout=60
    )
    assert SECRET not in listed.stdout + listed.stderr


# --- 8.3: how deep tasks may nest ---------------------------------------------------------------------------


def nested_flow(levels: int) -> str:
    """`levels` levels of tasks: Sequential inside Sequential, a Log at the bottom (one line of flow-style YAML,
    built as text: json.dumps itself recurses)."""
    text = '{"id": "leaf", "type": "io.kestra.plugin.core.log.Log", "message": "deep"}'
    for i in range(levels - 1):
        text = f'{{"id": "s{i}", "type": "io.kestra.plugin.core.flow.Sequential", "tasks": [{text}]}}'
    return f'{{"id": "deep", "namespace": "acme", "tasks": [{text}]}}\n'


def gitsync_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    state = ["--db", str(tmp_path / "state.db"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run([sys.executable, "-m", "gitsync", *args, *state], capture_output=True, text=True, timeout=120)


def test_validate_enforces_the_depth_limit_with_its_place(tmp_path: Path) -> None:
    from runner.validate.validator import MAX_TASK_DEPTH

    assert MAX_TASK_DEPTH == 100
    ok, deep = tmp_path / "ok.yaml", tmp_path / "deep.yaml"
    ok.write_text(nested_flow(100))
    deep.write_text(nested_flow(480))
    done = subprocess.run([sys.executable, "-m", "gitsync", "validate", str(ok)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", "gitsync", "validate", str(deep)], capture_output=True, text=True)
    assert done.returncode == 1
    assert f"{deep}:1:" in done.stdout + done.stderr
    assert "is nested 101 levels deep; tasks may nest at most 100 levels" in done.stdout + done.stderr


def test_a_too_deep_flow_is_refused_before_it_runs_and_100_levels_run(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text(nested_flow(480))
    done = gitsync_cli(tmp_path, "run", "--file", str(deep))
    assert done.returncode == 1 and "at most 100 levels" in done.stderr, done.stdout + done.stderr
    assert "RecursionError" not in done.stdout + done.stderr
    ok = tmp_path / "ok.yaml"
    ok.write_text(nested_flow(100))
    done = gitsync_cli(tmp_path, "run", "--file", str(ok))
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    states = query_db(tmp_path / "state.db", "SELECT state FROM executions")
    assert [r["state"] for r in states] == ["SUCCESS"]


def test_the_engine_fails_cleanly_on_nesting_deeper_than_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a deeper flow to reach the engine (here the validator's depth check is switched off to let one through), the
    execution fails with the reason instead of a RecursionError that leaves it RUNNING."""
    from runtime import Runtime

    import runner.validate.validator as validator

    monkeypatch.setattr(validator, "_too_deep", lambda data: None)
    rt = Runtime(tmp_path)
    try:
        rt.deploy({"deep.yaml": nested_flow(150)})
        execution = rt.run("acme.deep")
    finally:
        rt.close()
    assert execution["state"] == "FAILED"
    assert any("tasks nest deeper than 100 levels" in (r["error"] or "") for r in execution["task_runs"])
    assert not [r for r in execution["task_runs"] if r["state"] == "RUNNING"]
