"""Sync on real repositories served on 127.0.0.1 (smart HTTP with a token, git://), real SQLite state."""

from __future__ import annotations

import json
import subprocess
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import installed
import pytest
from gitservers import GitRepo, closed_port_url, git_daemon, http_git_server
from runtime import gitsync_cli

from gitsync import state
from gitsync.config import SourceConfig
from gitsync.state.database import Store
from gitsync.sync.apply import SyncResult, sync_source
from runner.api import RunContext
from runner.plugin import Task
from runner.registry import Registry

TOKEN = "t0ken-for-tests"


def flow(flow_id: str, message: str = "hello", namespace: str = "acme.demo", cron: str | None = None) -> str:
    text = f"""\
id: {flow_id}
namespace: {namespace}
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: {message}
"""
    if cron:
        text += f"""triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "{cron}"
"""
    return text


class Env:
    """A work repository, the server root it is published to, a remote URL, and a state file."""

    def __init__(self, tmp: Path, url: str, server_root: Path) -> None:
        self.repo = GitRepo(tmp / "work")
        self.server_root = server_root
        self.store = Store(tmp / "state.db")
        self.data_dir = tmp / "data"
        self.url = url

    def push(self, files: dict[str, str | None], message: str = "change") -> str:
        sha = self.repo.commit(files, message)
        self.repo.publish(self.server_root, "flows")
        return sha

    def source(self, **overrides: object) -> SourceConfig:
        values: dict[str, object] = {
            "name": "main",
            "repo": self.url,
            "branch": "main",
            "path": "flows",
            "namespace_prefix": "acme",
            "token_env": "GITSYNC_TEST_TOKEN",
        }
        values.update(overrides)
        return SourceConfig.model_validate(values)

    def sync(self, **overrides: object) -> SyncResult:
        return sync_source(self.store, self.source(**overrides), self.data_dir, installed.registry())

    def flows(self) -> dict[str, dict]:
        return {row["uid"]: row for row in state.list_flows(self.store)}

    def triggers(self) -> dict[str, dict]:
        return {row["uid"]: row for row in state.list_triggers(self.store)}


@pytest.fixture(params=["http", "git"])
def env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("GITSYNC_TEST_TOKEN", TOKEN)
    root = tmp_path / "srv"
    root.mkdir()
    server = http_git_server(root, token=TOKEN) if request.param == "http" else git_daemon(root)
    with server as base:
        environment = Env(tmp_path, f"{base}/flows.git", root)
        yield environment
        environment.store.close()


def test_add_change_remove(env: Env) -> None:
    first = env.push({"flows/hello.yaml": flow("hello"), "flows/tick.yaml": flow("tick", cron="0 * * * *")})
    result = env.sync()
    assert (result.outcome, result.commit) == ("applied", first)
    assert set(env.flows()) == {"acme.demo.hello", "acme.demo.tick"}
    assert list(env.triggers()) == ["acme.demo.tick/tick"]

    second = env.push({"flows/hello.yaml": flow("hello", "bonjour"), "flows/tick.yaml": None}, "translate")
    result = env.sync()
    assert (result.outcome, result.previous, result.commit) == ("applied", first, second)
    assert result.summary == "applied: +0 ~1 -1 flows, 1 trigger change(s)"
    assert env.flows()["acme.demo.hello"]["revision"] == 2
    assert env.triggers() == {}
    history = state.history(env.store, "acme.demo.tick")
    assert [(h["revision"], bool(h["deleted"])) for h in history] == [(1, False), (2, True)]
    assert state.history(env.store, "acme.demo.hello")[-1]["message"] == "translate"

    assert env.sync().outcome == "unchanged"


def test_invalid_commit_applies_nothing_then_a_fix_applies(env: Env) -> None:
    good = env.push({"flows/hello.yaml": flow("hello")})
    env.sync()
    bad_text = flow("hello", "changed").replace("io.kestra.plugin.core.log.Log", "io.kestra.plugin.core.log.Lgo")
    bad = env.push({"flows/hello.yaml": bad_text, "flows/other.yaml": flow("other")})
    result = env.sync()
    assert result.outcome == "invalid" and result.exit_code == 1
    assert result.errors[0].startswith("flows/hello.yaml:5:5: flow 'acme.demo.hello': tasks[0].type: unknown task")
    assert set(env.flows()) == {"acme.demo.hello"}  # nothing of the bad commit, not even other.yaml
    assert env.flows()["acme.demo.hello"]["commit"] == good
    assert state.applied_commit(env.store, "main") == good
    syncs = state.list_syncs(env.store)
    assert (syncs[0]["outcome"], syncs[0]["commit"]) == ("invalid", bad)
    assert syncs[0]["errors"][0]["line"] == 5

    fixed = env.push({"flows/hello.yaml": flow("hello", "changed")}, "fix the type")
    result = env.sync()
    assert (result.outcome, result.commit) == ("applied", fixed)
    assert set(env.flows()) == {"acme.demo.hello", "acme.demo.other"}


def test_revert_is_a_new_revision_restoring_the_old_content(env: Env) -> None:
    env.push({"flows/hello.yaml": flow("hello")})
    env.sync()
    changed = env.push({"flows/hello.yaml": flow("hello", "oops")})
    env.sync()
    from gitservers import git

    git("revert", "--no-edit", changed, cwd=env.repo.path)
    env.repo.publish(env.server_root, "flows")
    result = env.sync()
    assert result.outcome == "applied"
    rows = state.history(env.store, "acme.demo.hello")
    assert [r["revision"] for r in rows] == [1, 2, 3]
    blobs = [
        r["blob"] for r in env.store.query("SELECT blob FROM revisions WHERE uid = 'acme.demo.hello' ORDER BY revision")
    ]
    assert blobs[2] == blobs[0] != blobs[1]  # the revert restores revision 1's content as revision 3
    assert rows[-1]["message"].startswith("Revert")


def test_force_push_to_an_unrelated_history_is_applied_with_a_warning(env: Env) -> None:
    env.push({"flows/hello.yaml": flow("hello"), "flows/old.yaml": flow("old")})
    env.sync()
    env.repo.checkout_orphan("rewrite")
    env.repo.commit({"flows/hello.yaml": flow("hello", "rewritten")})
    from gitservers import git

    git("branch", "-M", "main", cwd=env.repo.path)
    env.repo.publish(env.server_root, "flows")
    result = env.sync()
    assert result.outcome == "applied"
    assert result.warnings[0].startswith("force-push:")
    assert set(env.flows()) == {"acme.demo.hello"}
    assert state.list_syncs(env.store)[0]["warnings"][0]["message"].startswith("force-push:")


def test_changed_cron_keeps_the_trigger_bookkeeping(env: Env) -> None:
    env.push({"flows/tick.yaml": flow("tick", cron="0 * * * *")})
    env.sync()
    with env.store.atomic() as conn:
        conn.execute("UPDATE triggers SET last_scheduled_at = '2026-11-27T10:00:00.000+00:00'")
    env.push({"flows/tick.yaml": flow("tick", cron="30 * * * *")})
    result = env.sync()
    assert result.plan is not None and result.plan.trigger_uids("changed") == ["acme.demo.tick/tick"]
    trigger = env.triggers()["acme.demo.tick/tick"]
    assert (trigger["cron"], trigger["last_scheduled_at"]) == ("30 * * * *", "2026-11-27T10:00:00.000+00:00")


def test_a_commit_removing_every_flow_is_refused_unless_allowed(env: Env) -> None:
    first = env.push({"flows/hello.yaml": flow("hello")})
    env.sync()
    emptied = env.push({"flows/hello.yaml": None, "README.md": "moved the flows elsewhere"})
    result = env.sync()
    assert result.outcome == "refused"
    assert "removes every flow of source 'main'" in result.errors[0]
    assert state.applied_commit(env.store, "main") == first
    assert set(env.flows()) == {"acme.demo.hello"}
    result = env.sync(allow_empty=True)
    assert (result.outcome, result.commit) == ("applied", emptied)
    assert env.flows() == {}


def test_wrong_path_cannot_wipe_production(env: Env) -> None:
    env.push({"flows/hello.yaml": flow("hello")})
    env.sync()
    same_commit = env.sync(path="flow")  # a changed path is planned again, even on the same commit
    assert same_commit.outcome == "refused" and "is path 'flow' right?" in same_commit.errors[0]
    env.push({"README.md": "docs"})
    result = env.sync(path="flow")
    assert result.outcome == "refused"
    assert set(env.flows()) == {"acme.demo.hello"}


def test_namespace_outside_the_prefix_is_invalid(env: Env) -> None:
    env.push({"flows/hello.yaml": flow("hello", namespace="other.team")})
    result = env.sync()
    assert result.outcome == "invalid"
    assert "outside this source's prefix 'acme'" in result.errors[0]
    assert env.flows() == {}


def test_flows_of_another_source_are_not_taken_over(env: Env, tmp_path: Path) -> None:
    env.push({"flows/hello.yaml": flow("hello")})
    assert env.sync(namespace_prefix=None).outcome == "applied"
    second = env.sync(name="second", namespace_prefix=None)
    assert second.outcome == "invalid"
    assert "flow 'acme.demo.hello' belongs to source 'main'" in second.errors[0]


def test_unreachable_remote_records_a_failed_sync(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    source = SourceConfig(name="gone", repo=f"{closed_port_url('http')}/flows.git", branch="main")
    result = sync_source(store, source, tmp_path / "data", installed.registry())
    assert (result.outcome, result.exit_code) == ("failed", 3)
    assert "connection refused" in result.summary.lower()
    assert state.list_syncs(store)[0]["outcome"] == "failed"
    store.close()


def test_wrong_token_fails_without_leaking_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "srv"
    GitRepo(tmp_path / "work").commit({"flows/hello.yaml": flow("hello")})
    GitRepo(tmp_path / "work").publish(root, "flows")
    monkeypatch.setenv("WRONG_TOKEN", "not-the-right-one")
    store = Store(tmp_path / "state.db")
    with http_git_server(root, token=TOKEN) as base:
        source = SourceConfig(name="x", repo=f"{base}/flows.git", branch="main", token_env="WRONG_TOKEN")
        result = sync_source(store, source, tmp_path / "data", installed.registry())
    assert result.outcome == "failed"
    assert "WRONG_TOKEN" in result.summary
    assert "not-the-right-one" not in result.summary
    assert "not-the-right-one" not in str(state.list_syncs(store))
    store.close()


def test_statuses_are_queued_with_the_state_they_report(env: Env) -> None:
    reporting = {"status": {"provider": "github", "repository": "acme/flows", "token_env": "GITSYNC_TEST_TOKEN"}}
    good = env.push({"flows/hello.yaml": flow("hello")})
    env.sync(**reporting)
    bad = env.push({"flows/hello.yaml": "id: hello\nnamespace: acme.demo\ntasks: []\n"})
    env.sync(**reporting)
    rows = env.store.query("SELECT commit_sha, context, state, description FROM outbox ORDER BY id")
    assert [(r["commit_sha"], r["state"]) for r in rows] == [
        (good, "pending"),
        (good, "success"),
        (bad, "pending"),
        (bad, "failure"),
    ]
    assert rows[1]["description"] == "applied: +1 ~0 -0 flows, 0 trigger change(s)"
    assert rows[3]["description"].startswith("flows/hello.yaml:3:")


def test_a_lost_git_cache_is_rebuilt_and_compared_with_the_state(env: Env) -> None:
    import shutil

    env.push({"flows/a.yaml": flow("a", cron="0 * * * *"), "flows/b.yaml": flow("b"), "flows/c.yaml": flow("c")})
    env.sync()
    shutil.rmtree(env.data_dir)  # the cache is gone; the state database is not
    env.push({"flows/a.yaml": flow("a"), "flows/b.yaml": None})  # a loses its trigger, b goes, c is unchanged
    result = env.sync()
    assert result.outcome == "applied"
    flows = env.flows()
    assert set(flows) == {"acme.demo.a", "acme.demo.c"}
    assert (flows["acme.demo.a"]["revision"], flows["acme.demo.c"]["revision"]) == (2, 1)  # c: same blob, no revision
    assert env.triggers() == {}


def test_a_source_without_a_status_block_queues_no_status(env: Env) -> None:
    env.push({"flows/hello.yaml": flow("hello")})
    assert env.sync().outcome == "applied"
    assert env.store.query("SELECT * FROM outbox") == []  # nothing would ever send them


def test_a_trigger_with_the_legacy_schedule_type_is_stored_canonical_and_fires(env: Env) -> None:
    from datetime import UTC, datetime, timedelta

    from gitsync.schedule.firing import SCHEDULE_TYPE
    from gitsync.state import fires

    legacy = flow("tick", cron="* * * * *").replace(SCHEDULE_TYPE, "io.kestra.core.models.triggers.types.Schedule")
    assert "io.kestra.core.models.triggers.types.Schedule" in legacy
    env.push({"flows/tick.yaml": legacy})
    assert env.sync().outcome == "applied"
    trigger = env.triggers()["acme.demo.tick/tick"]
    assert (trigger["type"], trigger["cron"]) == (SCHEDULE_TYPE, "* * * * *")
    assert [t["uid"] for t in fires.schedule_triggers(env.store)] == ["acme.demo.tick/tick"]
    assert fires.fire_due(env.store, datetime.now(UTC) + timedelta(minutes=3))


# -- a source whose settings change on the same commit (`gitsync sync` as a user runs it) -------------------------


class LocalSource:
    """A local work repository synced with `gitsync sync --repo DIR` into one state file."""

    def __init__(self, tmp: Path) -> None:
        self.repo = GitRepo(tmp / "work")
        self.state = (str(tmp / "state.db"), str(tmp / "data"))

    def sync(self, path: str, prefix: str) -> subprocess.CompletedProcess[str]:
        args = ("sync", "--repo", str(self.repo.path), "--name", "main", "--path", path, "--namespace-prefix", prefix)
        return gitsync_cli(self.state, *args)

    def read(self, command: str) -> list[dict]:
        done = gitsync_cli(self.state, command, "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def flow_uids(self) -> set[str]:
        return {row["uid"] for row in self.read("flows")}


def test_a_changed_path_on_the_same_commit_is_planned_again_and_retires_the_flows_left_outside(
    tmp_path: Path,
) -> None:
    local = LocalSource(tmp_path)
    commit = local.repo.commit(
        {
            "flows/analytics/report.yaml": flow("report", namespace="acme.analytics"),
            "flows/ops/backup.yaml": flow("backup", namespace="acme.ops", cron="0 3 * * *"),
        }
    )
    assert local.sync("flows", "acme").returncode == 0
    assert local.flow_uids() == {"acme.analytics.report", "acme.ops.backup"}

    done = local.sync("flows/analytics", "acme.analytics")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"main: applied {commit[:12]}" in done.stdout
    assert (
        "note: source settings changed: path flows → flows/analytics, namespace_prefix acme → acme.analytics; "
        "every flow of the commit is compared again"
    ) in done.stdout
    assert "- flow acme.ops.backup (flows/ops/backup.yaml)" in done.stdout
    assert "acme.analytics.report" not in done.stdout  # the same file at the same commit: unchanged
    assert local.flow_uids() == {"acme.analytics.report"}
    assert local.read("triggers") == []
    (newest, *_) = local.read("syncs")
    assert newest["summary"].endswith(
        "(source settings changed: path flows → flows/analytics, namespace_prefix acme → acme.analytics)"
    )

    again = local.sync("flows/analytics", "acme.analytics")
    assert again.returncode == 0 and again.stdout.startswith(f"main: unchanged {commit[:12]}: no changes")


def test_a_narrowed_prefix_on_the_same_commit_is_checked_again(tmp_path: Path) -> None:
    local = LocalSource(tmp_path)
    local.repo.commit(
        {
            "flows/report.yaml": flow("report", namespace="acme.analytics"),
            "flows/backup.yaml": flow("backup", namespace="acme.ops"),
        }
    )
    assert local.sync("flows", "acme").returncode == 0

    done = local.sync("flows", "acme.analytics")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "main: invalid" in done.stdout
    assert "note: source settings changed: namespace_prefix acme → acme.analytics" in done.stdout
    assert "flows/backup.yaml" in done.stdout and "outside this source's prefix 'acme.analytics'" in done.stdout
    assert local.flow_uids() == {"acme.analytics.report", "acme.ops.backup"}  # invalid: nothing is applied
    listing = gitsync_cli(local.state, "syncs").stdout.splitlines()
    assert listing[1].endswith("(in full: gitsync syncs 2)"), listing  # the one error is longer than its cell

    fixed = local.repo.commit({"flows/backup.yaml": None})
    done = local.sync("flows", "acme.analytics")
    assert done.returncode == 0 and f"main: applied {fixed[:12]}" in done.stdout, done.stdout
    assert local.flow_uids() == {"acme.analytics.report"}


# -- a first sync of many flows holds one flow's model at a time ----------------------------------------------------


class Counted(Task):
    """A task type of this test that counts how many of its instances are alive at once."""

    type_name: ClassVar[str] = "test.sync.Counted"
    alive: ClassVar[int] = 0
    most: ClassVar[int] = 0

    def model_post_init(self, context: Any) -> None:
        Counted.alive += 1
        Counted.most = max(Counted.most, Counted.alive)
        weakref.finalize(self, Counted.gone)

    @staticmethod
    def gone() -> None:
        Counted.alive -= 1

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return {}


def test_a_first_sync_holds_one_flow_model_at_a_time_and_applies_every_flow(tmp_path: Path) -> None:
    """A first sync reads every file: each flow is validated, what the plan and the apply need of it is kept, and
    its model is dropped before the next file is read (10,000 models at once are most of a large sync's memory)."""
    registry = Registry()
    registry.register(Counted)
    repo = GitRepo(tmp_path / "work")
    task = "tasks:\n  - id: count\n    type: test.sync.Counted\n"
    tick = 'triggers:\n  - id: tick\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: "{} 2 * * *"\n'
    texts = {
        f"flows/f{n:03d}.yaml": f"id: f{n:03d}\nnamespace: acme.many\n{task}"
        + (tick.format(n % 60) if n % 3 == 0 else "")
        for n in range(60)
    }
    for cls in installed.registry().classes("trigger"):
        registry.register(cls)
    commit = repo.commit(texts)
    store = Store(tmp_path / "state.db")
    source = SourceConfig(name="main", repo=str(repo.path), branch="main", path="flows")
    try:
        Counted.most = 0
        result = sync_source(store, source, tmp_path / "data", registry)
        assert (result.outcome, result.summary) == ("applied", "applied: +60 ~0 -0 flows, 20 trigger change(s)")
        assert Counted.most <= 2, f"{Counted.most} flows' models were alive at once"
        rows = {row["uid"]: row for row in state.list_flows(store)}
        assert len(rows) == 60 and {row["commit"] for row in rows.values()} == {commit}
        assert {row["uid"] for row in state.list_triggers(store)} == {
            f"acme.many.f{n:03d}/tick" for n in range(0, 60, 3)
        }
        stored = store.query_one("SELECT text FROM revisions WHERE uid = ?", ("acme.many.f007",))
        assert stored == {"text": texts["flows/f007.yaml"]}
    finally:
        store.close()
