"""gitsync.gitread against real repositories built with the git CLI in tmp_path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitsync.git import trees as gitread
from gitsync.git.trees import FileChange, GitReadError

_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, env=_ENV, check=True, capture_output=True, text=True).stdout


def commit(root: Path, files: dict[str, str | None], message: str = "change") -> str:
    """Write (or delete, for None) files, commit everything, return the full sha."""
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    return tmp_path


def test_resolve_forms(repo_dir: Path) -> None:
    first = commit(repo_dir, {"a.yaml": "1"})
    second = commit(repo_dir, {"a.yaml": "2"})
    git(repo_dir, "tag", "v1", first)
    git(repo_dir, "tag", "-a", "v2", "-m", "annotated", second)
    git(repo_dir, "branch", "feature", first)
    repo = gitread.open_repo(str(repo_dir))
    cases = {
        second: second,
        second[:7]: second,
        "HEAD": second,
        "main": second,
        "feature": first,
        "v1": first,
        "v2": second,
        "HEAD~1": first,
        "main^": first,
        f"{second[:8]}~1": first,
        "HEAD^0": second,
    }
    for rev, expected in cases.items():
        assert gitread.resolve(repo, rev).id.decode() == expected, rev


@pytest.mark.parametrize("rev", ["nope", "HEAD~5", "deadbeef", "main^2"])
def test_resolve_unknown(repo_dir: Path, rev: str) -> None:
    commit(repo_dir, {"a.yaml": "1"})
    repo = gitread.open_repo(str(repo_dir))
    with pytest.raises(GitReadError, match=rev.replace("^", r"\^")):
        gitread.resolve(repo, rev)


def test_open_repo_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitReadError, match="not a git repository"):
        gitread.open_repo(str(tmp_path))


def test_list_flow_files_skips_hidden_symlinks_and_other_files(repo_dir: Path) -> None:
    commit(repo_dir, {"flows/a.yaml": "x", "flows/sub/b.yml": "y", "flows/.hidden/c.yaml": "z", "flows/readme.md": ""})
    os.symlink("a.yaml", repo_dir / "flows" / "link.yaml")
    sha = commit(repo_dir, {"other/d.yaml": "w"})
    repo = gitread.open_repo(str(repo_dir))
    head = gitread.resolve(repo, sha)
    files = gitread.list_flow_files(repo, gitread.folder_tree(repo, head, "./flows/"), "flows")
    assert sorted(files) == ["flows/a.yaml", "flows/sub/b.yml"]
    assert gitread.read_blob(repo, files["flows/a.yaml"]) == b"x"
    assert gitread.folder_tree(repo, head, "missing") is None
    assert gitread.folder_tree(repo, head, "flows/a.yaml") is None


def test_diff_trees_is_restricted_to_the_folder(repo_dir: Path) -> None:
    base = commit(repo_dir, {"flows/a.yaml": "1", "flows/b.yaml": "1", "other/x.yaml": "1"})
    head = commit(
        repo_dir,
        {"flows/a.yaml": "2", "flows/b.yaml": None, "flows/n/c.yaml": "1", "other/x.yaml": "2", "flows/c.txt": "t"},
    )
    repo = gitread.open_repo(str(repo_dir))
    b, h = gitread.resolve(repo, base), gitread.resolve(repo, head)
    changes = gitread.diff_trees(
        repo, gitread.folder_tree(repo, b, "flows"), gitread.folder_tree(repo, h, "flows"), "flows"
    )
    summary = [(c.old_path, c.new_path) for c in changes]
    assert summary == [("flows/a.yaml", "flows/a.yaml"), ("flows/b.yaml", None), (None, "flows/n/c.yaml")]
    assert all(isinstance(c, FileChange) for c in changes)
    assert gitread.read_blob(repo, changes[0].new_blob or "") == b"2"


def test_first_parent_changes_newest_first_and_bounded(repo_dir: Path) -> None:
    shas = [commit(repo_dir, {"flows/a.yaml": str(i)}) for i in range(5)]
    commit(repo_dir, {"elsewhere.txt": "not a flow"})
    repo = gitread.open_repo(str(repo_dir))
    head = gitread.resolve(repo, "HEAD")
    steps = list(gitread.first_parent_changes(repo, head, "flows", max_touching=3))
    assert [s.commit.id.decode() for s in steps] == shas[::-1][:3]
    assert steps[-1].changes[0].new_path == "flows/a.yaml"


def test_share_history(repo_dir: Path) -> None:
    first = commit(repo_dir, {"a.yaml": "1"})
    git(repo_dir, "checkout", "-q", "--orphan", "other")
    orphan = commit(repo_dir, {"a.yaml": "other"})
    repo = gitread.open_repo(str(repo_dir))
    a, b = gitread.resolve(repo, first), gitread.resolve(repo, orphan)
    assert gitread.share_history(repo, a, a)
    assert not gitread.share_history(repo, a, b)
