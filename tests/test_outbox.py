"""The status sender against a real fake host on 127.0.0.1 and a real SQLite file (no mocks, no timings)."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostserver import RunningHost, host_server

from gitsync.cli.options import add_statuses_command
from gitsync.cli.statuses import list_statuses
from gitsync.hosts import GitHubProvider, GitLabProvider
from gitsync.state.database import Store
from gitsync.state.outbox import enqueue_status
from gitsync.statuses.sender import DUPLICATE, NO_PROVIDER, SUPERSEDED, Backoff, OutboxSender

TOKEN = "t0k3n"
FAST = Backoff(base=0.01, cap=0.05)


def sha(n: int) -> str:
    return f"{n:040x}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store(tmp_path / "state.db")
    yield db
    db.close()


@pytest.fixture
def github() -> Iterator[RunningHost]:
    with host_server("github", "acme/flows", TOKEN) as running:
        yield running


def sender_for(store: Store, host: RunningHost, **options: object) -> OutboxSender:
    provider = GitHubProvider("acme/flows", TOKEN, host.api_url, timeout=5)
    options.setdefault("backoff", FAST)
    return OutboxSender(store, {"analytics": provider}, **options)  # type: ignore[arg-type]


def enqueue(store: Store, commit: str, context: str, state: str, description: str, source: str = "analytics") -> None:
    with store.atomic() as conn:
        enqueue_status(conn, source, commit, context, state, description, None)


def rows(store: Store) -> list[dict[str, object]]:
    return store.query("SELECT * FROM outbox ORDER BY id")


def posted(host: RunningHost) -> list[tuple[str, str, str, str]]:
    return [(s["sha"], s["context"], s["state"], s["description"]) for s in host.statuses]


def test_three_queued_states_of_one_context_post_only_the_latest(store: Store, github: RunningHost) -> None:
    enqueue(store, sha(1), "gitsync/sync", "pending", "syncing")
    enqueue(store, sha(1), "gitsync/sync", "pending", "planning")
    enqueue(store, sha(1), "gitsync/sync", "success", "applied: +2 ~1 -0 flows, 3 triggers")
    enqueue(store, sha(1), "gitsync/analytics.etl", "pending", "running")
    assert sender_for(store, github).drain()
    assert sorted(posted(github)) == [
        (sha(1), "gitsync/analytics.etl", "pending", "running"),
        (sha(1), "gitsync/sync", "success", "applied: +2 ~1 -0 flows, 3 triggers"),
    ]
    table = rows(store)
    assert [(r["superseded"], bool(r["sent_at"])) for r in table] == [(1, False), (1, False), (0, True), (0, True)]
    assert table[0]["last_error"] == SUPERSEDED
    assert github.violations == []


def test_a_keys_statuses_arrive_in_the_order_written(store: Store, github: RunningHost) -> None:
    sender = sender_for(store, github)
    for state, text in [("pending", "running"), ("success", "done in 2s"), ("pending", "running"), ("failure", "x")]:
        enqueue(store, sha(2), "gitsync/a.b", state, text)
        assert sender.drain()
    assert [p[2] for p in posted(github)] == ["pending", "success", "pending", "failure"]


def test_the_same_state_and_description_is_never_posted_twice(store: Store, github: RunningHost) -> None:
    sender = sender_for(store, github)
    enqueue(store, sha(3), "gitsync/sync", "success", "applied: +0 ~0 -0 flows")
    assert sender.drain()
    enqueue(store, sha(3), "gitsync/sync", "success", "applied: +0 ~0 -0 flows")
    assert sender.drain()
    restarted = sender_for(store, github)  # the last one posted lives in SQLite, not in the sender
    enqueue(store, sha(3), "gitsync/sync", "success", "applied: +0 ~0 -0 flows")
    assert restarted.drain()
    assert len(github.statuses) == 1
    assert [r["last_error"] for r in rows(store)] == [None, DUPLICATE, DUPLICATE]
    enqueue(store, sha(3), "gitsync/sync", "success", "applied: +1 ~0 -0 flows")  # a new description is posted
    assert restarted.drain()
    assert len(github.statuses) == 2


def test_a_500_is_retried_until_the_host_accepts(store: Store, github: RunningHost) -> None:
    github.fail(500, times=3)
    enqueue(store, sha(4), "gitsync/sync", "success", "ok")
    assert sender_for(store, github).drain()
    assert len(github.faulted) == 3 and len(github.statuses) == 1
    row = rows(store)[0]
    assert row["attempts"] == 4 and row["sent_at"] and row["last_error"] is None and not row["given_up"]


def test_429_retry_after_is_honoured_and_pauses_the_host(store: Store, github: RunningHost) -> None:
    github.fail(429, retry_after=1)
    enqueue(store, sha(5), "gitsync/a", "success", "ok")
    enqueue(store, sha(5), "gitsync/b", "success", "ok")
    sender = sender_for(store, github)
    sender.drain_once()
    first, second = rows(store)
    assert first["attempts"] == 1 and "rate limited" in first["last_error"] and first["next_attempt_at"]
    assert second["attempts"] == 0  # the host asked to wait: its other rows wait too
    assert first["next_attempt_at"] >= first["created_at"]
    sender.drain_once()  # nothing is due yet: no request
    assert github.received == 1 and github.statuses == []
    assert sender.drain()
    assert sorted(p[1] for p in posted(github)) == ["gitsync/a", "gitsync/b"]
    assert [r["attempts"] for r in rows(store)] == [2, 1]


@pytest.mark.parametrize("code", [401, 403, 404, 422])
def test_refusals_give_up_with_the_reason(store: Store, github: RunningHost, code: int) -> None:
    if code == 401:
        sender = OutboxSender(store, {"analytics": GitHubProvider("acme/flows", "wrong", github.api_url)}, backoff=FAST)
    else:
        github.fail(code)
        sender = sender_for(store, github)
    enqueue(store, sha(6), "gitsync/sync", "failure", "flows/x.yaml:12: unknown task type")
    assert sender.drain()
    row = rows(store)[0]
    assert row["given_up"] == 1 and row["attempts"] == 1 and not row["sent_at"]
    assert row["last_error"].startswith(f"HTTP {code}: ")
    if code == 401:
        assert "Bad credentials" in row["last_error"] and "wrong" not in row["last_error"]
    health = sender.health()
    assert health["status"] == "degraded" and health["given_up"] == 1
    assert health["given_up_recent"][0]["last_error"] == row["last_error"]
    assert list_statuses(store)[0]["outcome"] == "given_up"
    if code != 401:  # a later status of the same key is still posted, and clears the health
        enqueue(store, sha(6), "gitsync/sync", "success", "applied")
        assert sender.drain()
        assert posted(github)[-1][2] == "success" and sender.health()["status"] == "ok"


def test_rows_of_a_source_without_a_provider_stay_unsent_with_the_reason(store: Store, github: RunningHost) -> None:
    enqueue(store, sha(7), "gitsync/sync", "success", "ok", source="elsewhere")
    enqueue(store, sha(7), "gitsync/run", "failure", "ok", source=None)  # type: ignore[arg-type]
    sender = sender_for(store, github)
    assert sender.drain()
    assert github.received == 0
    assert [(r["last_error"], r["given_up"], r["sent_at"]) for r in rows(store)] == [(NO_PROVIDER, 0, None)] * 2
    assert [s["outcome"] for s in list_statuses(store)] == ["unsent", "unsent"]


def test_a_restart_while_the_host_answers_500_delivers_every_status_exactly_once(
    tmp_path: Path, github: RunningHost
) -> None:
    db = tmp_path / "restart.db"
    first_store = Store(db)
    github.fail(500, times=None)
    keys = [(sha(100 + n), f"gitsync/ns.flow{n % 3}") for n in range(12)]
    for commit, context in keys:
        enqueue(first_store, commit, context, "pending", "running")
        enqueue(first_store, commit, context, "success", "done")
    first = sender_for(first_store, github, concurrency=4, poll_interval=0.01)
    first.start()
    wait_for(lambda: all(r["attempts"] for r in first_store.query("SELECT attempts FROM outbox WHERE superseded = 0")))
    github.clear_faults()  # the host recovers; the sender is stopped part-way through
    wait_for(lambda: len(github.statuses) >= 1)
    first.stop()
    first_store.close()
    delivered_before = len(github.statuses)

    second_store = Store(db)
    assert sender_for(second_store, github, concurrency=4).drain()
    second_store.close()
    assert Counter((s["sha"], s["context"]) for s in github.statuses) == Counter(keys)
    assert {s["state"] for s in github.statuses} == {"success"}
    assert delivered_before <= len(keys) and github.violations == []


def test_a_slow_host_does_not_hold_the_database(store: Store, github: RunningHost) -> None:
    github.slow(1.5)
    enqueue(store, sha(8), "gitsync/sync", "pending", "syncing")
    sender = sender_for(store, github, poll_interval=0.01)
    sender.start()
    try:
        wait_for(lambda: github.received == 1)
        enqueue(store, sha(9), "gitsync/sync", "pending", "a sync writes while the host is slow")
        assert github.statuses == []  # the write above completed while the request was still unanswered
        wait_for(lambda: len(github.statuses) == 2)
    finally:
        sender.stop()


def test_statuses_command_json(store: Store, github: RunningHost, capsys: pytest.CaptureFixture[str]) -> None:
    github.fail(422)
    enqueue(store, sha(10), "gitsync/sync", "pending", "syncing")
    enqueue(store, sha(10), "gitsync/sync", "failure", "flows/a.yaml:3: bad")
    enqueue(store, sha(11), "gitsync/sync", "success", "ok")
    sender = sender_for(store, github)
    assert sender.drain()
    parser = argparse.ArgumentParser()
    add_statuses_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["statuses", "--db", store.path, "--commit", sha(10), "--format", "json"])
    assert args.handler(args) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["state"], s["outcome"]) for s in listed] == [("failure", "given_up"), ("pending", "superseded")]
    for field in ("commit", "context", "state", "description", "sent_at", "attempts", "last_error", "given_up"):
        assert field in listed[0]
    assert listed[0]["commit"] == sha(10) and listed[0]["last_error"].startswith("HTTP 422")


def test_gitlab_gets_running_then_success(store: Store) -> None:
    with host_server("gitlab", "analytics/flows", TOKEN) as gitlab:
        provider = GitLabProvider("analytics/flows", TOKEN, gitlab.api_url)
        sender = OutboxSender(store, {"analytics": provider}, backoff=FAST)
        enqueue(store, sha(12), "gitsync/analytics.etl", "pending", "running")
        assert sender.drain()
        enqueue(store, sha(12), "gitsync/analytics.etl", "failure", "failed task: load (12s)")
        assert sender.drain()
        assert [(s["state"], s["context"]) for s in gitlab.statuses] == [
            ("running", "gitsync/analytics.etl"),
            ("failed", "gitsync/analytics.etl"),
        ]
        assert gitlab.violations == []


def wait_for(condition: object, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_from_settings_builds_a_provider_per_source_with_status(
    store: Store, github: RunningHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitsync.config import Settings

    monkeypatch.setenv("GITSYNC_TEST_STATUS_TOKEN", TOKEN)
    status = {"provider": "github", "api_url": github.api_url, "repository": "acme/flows"}
    settings = Settings.model_validate(
        {
            "sources": [
                {
                    "name": "analytics",
                    "repo": "/tmp/a",
                    "namespace_prefix": "analytics",
                    "status": {**status, "token_env": "GITSYNC_TEST_STATUS_TOKEN"},
                },
                {"name": "quiet", "repo": "/tmp/b", "namespace_prefix": "quiet"},
                {
                    "name": "tokenless",
                    "repo": "/tmp/c",
                    "namespace_prefix": "tokenless",
                    "status": {**status, "token_env": "GITSYNC_TEST_UNSET_TOKEN"},
                },
            ]
        }
    )
    sender = OutboxSender.from_settings(store, settings, backoff=FAST)
    assert set(sender.providers) == {"analytics"}
    assert sender.unavailable["quiet"] == NO_PROVIDER
    assert "GITSYNC_TEST_UNSET_TOKEN is not set" in sender.unavailable["tokenless"]
    for source in ("analytics", "quiet", "tokenless"):
        enqueue(store, sha(13), f"gitsync/{source}", "success", "ok", source=source)
    assert sender.drain()
    assert posted(github) == [(sha(13), "gitsync/analytics", "success", "ok")]
    assert [r["last_error"] for r in rows(store)][1:] == [NO_PROVIDER, sender.unavailable["tokenless"]]
    health = sender.health()
    assert health["status"] == "ok" and health["hosts"]["analytics"]["sent"] == 1
    assert health["unconfigured"] == sender.unavailable
    sender.close()
