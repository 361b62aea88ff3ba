"""git Clone against a local repository and a smart-HTTP server (with and without basic auth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gitservers import GitRepo, http_git_server
from taskctx import make_context

from plugins.git.clone import Clone
from runner.api import RunContext, TaskFailed

TOKEN = "s3cret-token"


def clone(url: str, **props: Any) -> Clone:
    return Clone.model_validate({"id": "task", "type": Clone.type_name, "url": url, **props})


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return make_context(tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "src")
    repo.commit({"README.md": "one\n"}, "first")
    repo.commit({"README.md": "two\n", "flows/a.yaml": "id: a\n"}, "second")
    return repo


def test_clone_local_repository_into_directory(ctx: RunContext, repo: GitRepo) -> None:
    outputs = clone(str(repo.path), directory="checkout").run(ctx)
    target = ctx.workdir / "checkout"
    assert outputs == {"directory": str(target)}
    assert (target / "README.md").read_text() == "two\n" and (target / "flows/a.yaml").exists()


def test_clone_into_the_working_directory_and_refuse_a_non_empty_one(ctx: RunContext, repo: GitRepo) -> None:
    assert clone(str(repo.path)).run(ctx) == {"directory": str(ctx.workdir)}
    with pytest.raises(TaskFailed, match="not empty"):
        clone(str(repo.path)).run(ctx)


@pytest.mark.parametrize(("props", "readme"), [({"branch": "feature"}, "feature\n"), ({"branch": "main"}, "two\n")])
def test_clone_branch(ctx: RunContext, repo: GitRepo, props: dict[str, Any], readme: str) -> None:
    from gitservers import git

    git("checkout", "-q", "-b", "feature", cwd=repo.path)
    repo.commit({"README.md": "feature\n"}, "on feature")
    git("checkout", "-q", "main", cwd=repo.path)
    clone(str(repo.path), directory="c", **props).run(ctx)
    assert (ctx.workdir / "c/README.md").read_text() == readme


def test_clone_commit(ctx: RunContext, repo: GitRepo) -> None:
    first = repo.head("HEAD~1")
    clone(str(repo.path), directory="c", commit=first[:10]).run(ctx)
    assert (ctx.workdir / "c/README.md").read_text() == "one\n"
    assert not (ctx.workdir / "c/flows").exists()


def test_clone_over_smart_http_with_basic_auth(ctx: RunContext, repo: GitRepo, tmp_path: Path) -> None:
    repo.publish(tmp_path / "srv", "flows")
    with http_git_server(tmp_path / "srv", token=TOKEN) as base:
        outputs = clone(f"{base}/flows.git", directory="c", username="x-access-token", password=TOKEN, depth=1).run(ctx)
        assert (Path(outputs["directory"]) / "flows/a.yaml").read_text() == "id: a\n"
        with pytest.raises(TaskFailed) as failed:
            clone(f"{base}/flows.git", directory="d", password="wrong-password").run(ctx)
        assert "wrong-password" not in failed.value.message


def test_shallow_clone_has_one_commit(ctx: RunContext, repo: GitRepo, tmp_path: Path) -> None:
    from dulwich.repo import Repo

    repo.publish(tmp_path / "srv", "flows")
    with http_git_server(tmp_path / "srv") as base:
        clone(f"{base}/flows.git", directory="c", depth=1).run(ctx)
    with Repo(str(ctx.workdir / "c")) as cloned:
        head = cloned[cloned.head()]
        assert head.parents and head.parents[0] not in cloned.object_store


def test_clone_unreachable(ctx: RunContext, tmp_path: Path) -> None:
    with pytest.raises(TaskFailed, match="clone of"):
        clone(str(tmp_path / "nothing-here"), directory="c").run(ctx)
