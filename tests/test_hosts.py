"""Providers against a real HTTP server on 127.0.0.1 playing each host (tests/hostserver.py): every request is
checked against the host's published schema; the answers and faults are the host's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hostserver import RunningHost, host_server

from gitsync.config import SourceConfig
from gitsync.hosts import (
    PROVIDERS,
    GitHubProvider,
    GitLabProvider,
    HostError,
    ProviderUnavailable,
    StatusPost,
    StatusProvider,
    provider_for,
    shorten_markdown,
)

SHA = "a" * 40
TOKEN = "t0k3n"
REPOS = {"github": "acme/flows", "gitea": "acme/flows", "gitlab": "analytics/data/flows"}


@pytest.fixture(params=["github", "gitea", "gitlab"])
def host(request: pytest.FixtureRequest) -> Iterator[tuple[RunningHost, StatusProvider]]:
    kind = request.param
    with host_server(kind, REPOS[kind], TOKEN) as running:
        provider = PROVIDERS[kind](REPOS[kind], TOKEN, running.api_url, timeout=5)
        yield running, provider
        provider.close()


def test_every_state_is_posted_schema_valid(host: tuple[RunningHost, StatusProvider]) -> None:
    running, provider = host
    for state in ("pending", "success", "failure", "warning", "error"):
        provider.post_status(
            StatusPost(SHA, "gitsync/sync", state, f"it is {state}", "https://gitsync.example.com/s/1")
        )
    assert running.violations == []
    expected = {
        "github": ["pending", "success", "failure", "success", "error"],
        "gitea": ["pending", "success", "failure", "warning", "error"],
        "gitlab": ["running", "success", "failed", "success", "failed"],
    }[provider.name]
    assert [s["state"] for s in running.statuses] == expected
    assert {s["context"] for s in running.statuses} == {"gitsync/sync"}
    assert {s["sha"] for s in running.statuses} == {SHA}
    warning = running.statuses[3]["description"]
    assert warning == ("it is warning" if provider.name == "gitea" else "warning: it is warning")


def test_descriptions_are_cut_to_the_host_limit(host: tuple[RunningHost, StatusProvider]) -> None:
    running, provider = host
    provider.post_status(StatusPost(SHA, "gitsync/sync", "failure", "x" * 1000))
    assert running.violations == []
    limit = {"github": 140, "gitea": 255, "gitlab": 255}[provider.name]
    description = running.statuses[0]["description"]
    assert len(description) == limit and description.endswith("…")


def test_the_fake_github_refuses_a_long_description_like_github() -> None:
    with host_server("github") as running:
        client = httpx.Client(base_url=running.api_url)
        answer = client.post(
            f"/repos/acme/flows/statuses/{SHA}",
            json={"state": "success", "description": "x" * 141},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["message"] == "description is too long (maximum is 140 characters)"
        bad = client.post(
            f"/repos/acme/flows/statuses/{SHA}", json={"state": "done"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert bad.status_code == 422 and running.violations  # outside the published enum
        client.close()


def test_gitlab_project_path_is_url_encoded() -> None:
    with host_server("gitlab", "analytics/data/flows") as running:
        provider = GitLabProvider("analytics/data/flows", TOKEN, running.api_url)
        assert provider.status_path(SHA) == f"/projects/analytics%2Fdata%2Fflows/statuses/{SHA}"
        provider.post_status(StatusPost(SHA, "gitsync/analytics.etl", "pending", "running"))
        assert running.violations == [] and running.statuses[0]["context"] == "gitsync/analytics.etl"
    assert GitLabProvider("42", TOKEN).status_path(SHA).startswith("/projects/42/")


def test_a_wrong_token_is_a_permanent_401(host: tuple[RunningHost, StatusProvider]) -> None:
    running, provider = host
    provider.token = "wrong"
    with pytest.raises(HostError) as caught:
        provider.post_status(StatusPost(SHA, "gitsync/sync", "success"))
    assert caught.value.status == 401 and caught.value.permanent
    assert running.statuses == []


@pytest.mark.parametrize("code", [403, 404, 422])
def test_refusals_are_permanent_and_5xx_and_429_are_not(code: int) -> None:
    with host_server("github") as running:
        provider = GitHubProvider("acme/flows", TOKEN, running.api_url)
        running.fail(code)
        with pytest.raises(HostError) as refused:
            provider.post_status(StatusPost(SHA, "c", "success"))
        assert refused.value.status == code and refused.value.permanent
        running.fail(500)
        with pytest.raises(HostError) as server_error:
            provider.post_status(StatusPost(SHA, "c", "success"))
        assert not server_error.value.permanent
        running.fail(429, retry_after=1)
        with pytest.raises(HostError) as limited:
            provider.post_status(StatusPost(SHA, "c", "success"))
        assert not limited.value.permanent and limited.value.retry_after is not None
        assert limited.value.retry_after >= 0.5


def test_github_403_rate_limit_is_retried() -> None:
    with host_server("github") as running:
        provider = GitHubProvider("acme/flows", TOKEN, running.api_url)
        running.fail(403, retry_after=2)
        with pytest.raises(HostError) as limited:
            provider.post_status(StatusPost(SHA, "c", "success"))
        assert limited.value.status == 403 and not limited.value.permanent
        assert "rate limit" in str(limited.value)


def test_timeouts_and_refused_connections_are_transient() -> None:
    with host_server("gitea") as running:
        provider = PROVIDERS["gitea"]("acme/flows", TOKEN, running.api_url, timeout=0.2)
        running.slow(1.0)
        with pytest.raises(HostError) as slow:
            provider.post_status(StatusPost(SHA, "c", "success"))
        assert slow.value.status is None and not slow.value.permanent
        url = running.api_url
    with pytest.raises(HostError) as closed:
        PROVIDERS["gitea"]("acme/flows", TOKEN, url, timeout=1).post_status(StatusPost(SHA, "c", "success"))
    assert closed.value.status is None and not closed.value.permanent


def test_comment_is_created_once_then_edited_in_place(host: tuple[RunningHost, StatusProvider]) -> None:
    running, provider = host
    first = provider.upsert_comment(7, "## plan\n+1 flow", marker="gitsync:plan:analytics")
    second = provider.upsert_comment(7, "## plan\n+2 flows", marker="gitsync:plan:analytics")
    third = provider.upsert_comment(7, "## plan\n+3 flows", marker="gitsync:plan:analytics")
    other_pr = provider.upsert_comment(8, "## plan", marker="gitsync:plan:analytics")
    assert first.created and not second.created and not third.created and other_pr.created
    assert first.id == second.id == third.id != other_pr.id
    comments = [c for c in running.comments.values() if c["pr"] == 7]
    assert len(comments) == 1 and comments[0]["edits"] == 2
    assert comments[0]["body"].startswith("<!-- gitsync:plan:analytics -->") and "+3 flows" in comments[0]["body"]
    assert running.violations == []


def test_the_earlier_comment_is_found_on_a_later_page(host: tuple[RunningHost, StatusProvider]) -> None:
    running, provider = host
    mine = provider.upsert_comment(3, "plan", marker="gitsync:plan")
    for n in range(provider.page_size + 5):  # other people's comments, after ours
        provider.request("POST", provider.comments_path(3), json={"body": f"review {n}"})
    ours = running.comments.pop(mine.id)  # ours moves to the last page (the host lists in insertion order)
    running.comments[mine.id] = ours
    again = provider.upsert_comment(3, "plan v2", marker="gitsync:plan")
    assert again.id == mine.id and not again.created
    assert sum(1 for r in running.requests if r["route"] == "list_comments") >= 2


def test_github_refuses_a_comment_over_65536_characters_so_the_caller_shortens() -> None:
    with host_server("github") as running:
        provider = GitHubProvider("acme/flows", TOKEN, running.api_url)
        huge = "| flow | change |\n" + "| x | + |\n" * 8000
        with pytest.raises(HostError) as refused:
            provider.upsert_comment(1, huge, marker="gitsync:plan")
        assert refused.value.status == 422 and refused.value.permanent
        assert "Body is too long" in str(refused.value)
        result = provider.upsert_comment(1, shorten_markdown(huge, provider.comment_limit - 100), marker="gitsync:plan")
        assert result.created and len(running.comments[result.id]["body"]) <= provider.comment_limit


def test_provider_for_a_source() -> None:
    bare = SourceConfig(name="a", repo="/tmp/x")
    with pytest.raises(ProviderUnavailable, match="no status provider configured"):
        provider_for(bare)
    source = SourceConfig.model_validate(
        {
            "name": "a",
            "repo": "/tmp/x",
            "status": {"provider": "github", "repository": "acme/flows", "token_env": "GITSYNC_TEST_NO_SUCH_TOKEN"},
        }
    )
    with pytest.raises(ProviderUnavailable, match="GITSYNC_TEST_NO_SUCH_TOKEN is not set"):
        provider_for(source)


def test_api_urls() -> None:
    assert GitHubProvider("a/b", "t").api_url == "https://api.github.com"
    assert GitHubProvider("a/b", "t", "https://ghe.example.com").api_url == "https://ghe.example.com/api/v3"
    assert GitHubProvider("a/b", "t", "https://ghe.example.com/api/v3/").api_url == "https://ghe.example.com/api/v3"
    assert PROVIDERS["gitea"]("a/b", "t", "https://git.example.com").api_url == "https://git.example.com/api/v1"
    assert GitLabProvider("1", "t", "https://gitlab.example.com/").api_url == "https://gitlab.example.com/api/v4"
