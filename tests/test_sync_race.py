"""One applied commit at a time: an apply compares and sets the source's applied commit in its transaction, so two
processes syncing one database (`gitsync sync` racing the daemon) never apply a commit twice, nor an older one
over a newer one. Each side is its own Store on the same SQLite file, as two processes would have; the second
one applies in the window between the first one's read of the applied commit and its apply (`on_status` is called
there)."""

from __future__ import annotations

from pathlib import Path

import installed
from gitservers import GitRepo

from gitsync.config import SourceConfig, StatusConfig
from gitsync.state.database import Store
from gitsync.sync.apply import sync_source

FLOW = """id: hello
namespace: acme
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{message}"
"""


def setup(tmp_path: Path) -> tuple[GitRepo, SourceConfig, Path]:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/hello.yaml": FLOW.format(message="one")})
    status = StatusConfig(provider="github", api_url="http://127.0.0.1:9", repository="acme/flows", token_env="T")
    source = SourceConfig(name="main", repo=str(repo.path), branch="main", path="flows", status=status)
    return repo, source, tmp_path / "state.db"


def other_process_syncs(db: Path, source: SourceConfig, data: Path) -> str:
    other = Store(db)
    try:
        result = sync_source(other, source, data, installed.registry())
        assert result.outcome == "applied", result.errors
        return str(result.commit)
    finally:
        other.close()


def test_the_same_commit_is_applied_once_when_two_syncs_race(tmp_path: Path) -> None:
    repo, source, db = setup(tmp_path)
    store = Store(db)
    winner: list[str] = []
    result = sync_source(
        store,
        source,
        tmp_path / "data",
        installed.registry(),
        on_status=lambda: winner.append(other_process_syncs(db, source, tmp_path / "data-other")),
    )
    assert winner == [repo.head()]
    assert result.outcome == "unchanged"
    assert "another gitsync process applied this commit" in result.summary
    assert store.query("SELECT uid, revision FROM revisions") == [{"uid": "acme.hello", "revision": 1}]
    assert [r["outcome"] for r in store.query("SELECT outcome FROM syncs")] == ["applied"]
    # the pending status this sync queued is closed: the newest row of the sync context is not pending
    last = store.query("SELECT state FROM outbox WHERE context = 'gitsync/sync' ORDER BY id DESC LIMIT 1")
    assert last == [{"state": "success"}]
    store.close()


def test_an_older_commit_is_not_applied_over_a_newer_one(tmp_path: Path) -> None:
    repo, source, db = setup(tmp_path)
    store = Store(db)
    older = repo.head()

    def newer_pushed_and_applied_elsewhere() -> None:
        repo.commit({"flows/hello.yaml": FLOW.format(message="two")})
        other_process_syncs(db, source, tmp_path / "data-other")

    result = sync_source(
        store, source, tmp_path / "data", installed.registry(), on_status=newer_pushed_and_applied_elsewhere
    )
    newer = repo.head()
    assert result.outcome == "unchanged"
    assert result.summary == (
        f"not applied: another gitsync process applied {newer[:12]} while this sync was planning {older[:12]}; "
        f"the next sync plans from {newer[:12]}"
    )
    assert store.query_one("SELECT applied_commit FROM sources")["applied_commit"] == newer
    (row,) = store.query("SELECT commit_sha FROM flows")
    assert row["commit_sha"] == newer
    store.close()
